# Tests of pres_jwt and the gateway (owner: gateway).
if(TARGET pres_jwt)
  pres_test(NAME unit.jwt LABEL unit TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_jwt.c
    LIBS pres_jwt PkgConfig::CRYPTO)
endif()
