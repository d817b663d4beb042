# Tests of pres_jwt and the gateway (owner: gateway).
if(TARGET pres_jwt)
  pres_test(NAME unit.jwt LABEL unit TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_jwt.c
    LIBS pres_jwt PkgConfig::CRYPTO)
endif()
if(TARGET gateway_core)
  pres_test(NAME unit.gateway_core LABEL unit TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_gateway_core.c
    LIBS gateway_core)
  pres_test(NAME unit.gateway_limit LABEL unit TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_gateway_limit.c
    LIBS gateway_core)
  if(TARGET itutil AND NOT CURL_FOUND)
    list(APPEND PRES_SKIPPED "it.gateway_api (libcurl4-openssl-dev)")
  elseif(TARGET ithttp)  # tests/fault.cmake: itutil + tokens, hand-made JWTs
    pres_test(NAME it.gateway_api LABEL it TIMEOUT 120
      SOURCES ${CMAKE_SOURCE_DIR}/tests/it/gateway_api.c
      LIBS ithttp PkgConfig::CURL)
    pres_test(NAME it.gateway_limits LABEL it TIMEOUT 180
      SOURCES ${CMAKE_SOURCE_DIR}/tests/it/gateway_limits.c
      LIBS ithttp PkgConfig::CURL)
    pres_test(NAME it.gateway_login LABEL it TIMEOUT 120
      SOURCES ${CMAKE_SOURCE_DIR}/tests/it/gateway_login.c
      LIBS ithttp)
    pres_test(NAME it.gateway_changelog LABEL it TIMEOUT 120
      SOURCES ${CMAKE_SOURCE_DIR}/tests/it/gateway_changelog.c
      LIBS ithttp PkgConfig::CURL)
  endif()
endif()
