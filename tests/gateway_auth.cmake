# Tests of tokens and streams (owner: auth): the revocation store, and the
# integration tests that attack the gateway's tokens and event streams
# over HTTP. Included after gateway.cmake (file names sort).
if(TARGET gateway_core)
  pres_test(NAME unit.gateway_auth LABEL unit TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_gateway_auth.c
    LIBS gateway_core)
endif()
