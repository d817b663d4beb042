# Tests of tokens and streams (owner: auth): the revocation store, and the
# integration tests that attack the gateway's tokens and event streams
# over HTTP. Included after gateway.cmake (file names sort).
if(TARGET gateway_core)
  pres_test(NAME unit.gateway_auth LABEL unit TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_gateway_auth.c
    LIBS gateway_core)
endif()
# One executable, one case per test, each with its own daemons.
if(TARGET gateway_core AND TARGET itutil AND TARGET presence-gateway)
  add_executable(test_it_gateway_rights
    ${CMAKE_SOURCE_DIR}/tests/it/gateway_rights.c)
  set_target_properties(test_it_gateway_rights PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_include_directories(test_it_gateway_rights PRIVATE
    ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(test_it_gateway_rights PRIVATE ithttp itutil pres_jwt
    PkgConfig::CRYPTO pres_common)
  foreach(c respell_es256 respell_rs256 iss_aud exp_max logout_503
            sse_exp sse_logout sse_account sse_account_bus)
    add_test(NAME it.gateway_rights.${c} COMMAND test_it_gateway_rights ${c})
    set_tests_properties(it.gateway_rights.${c} PROPERTIES LABELS it
      TIMEOUT 60
      ENVIRONMENT "PRESENCE_BUILD_DIR=${CMAKE_BINARY_DIR};PRESENCE_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  endforeach()
endif()
