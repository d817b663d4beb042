# Fault tests (owner: fault): crashes at random instants, a full disk, the
# broker away, slow consumers (label fault), and the soak (label soak).
# ithttp is the HTTP side of the tests (gateway, raw client, tokens and
# hand-made JWTs, SSE); the gateway's integration tests link it too.
if(TARGET itutil AND TARGET pres_jwt AND TARGET presence-gateway
   AND TARGET PkgConfig::CRYPTO)
  add_library(ithttp STATIC ${CMAKE_SOURCE_DIR}/tests/it/ithttp.c)
  target_include_directories(ithttp PUBLIC ${CMAKE_SOURCE_DIR}/tests/it)
  target_link_libraries(ithttp PUBLIC itutil pres_jwt PkgConfig::CRYPTO)

  # The gateway's SSE ring behind an in-process MHD (no broker, no gateway).
  pres_test(NAME unit.gateway_sse LABEL unit TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_gateway_sse.c
    LIBS gateway_core ithttp)

  # Needs root (mounts a small tmpfs); exit 77 = skipped otherwise.
  pres_test(NAME fault.full_disk LABEL fault TIMEOUT 180
    SOURCES ${CMAKE_SOURCE_DIR}/tests/fault/full_disk.c LIBS ithttp)
  set_tests_properties(fault.full_disk PROPERTIES SKIP_RETURN_CODE 77)

  # 5 rounds here; any number from the command line:
  #   PRESENCE_BUILD_DIR=build build/tests/test_fault_crash_loop 200
  pres_test(NAME fault.crash_loop LABEL fault TIMEOUT 300
    SOURCES ${CMAKE_SOURCE_DIR}/tests/fault/crash_loop.c LIBS ithttp
    ARGS 5)

  # The broker frozen 10 s, then gone 10 s, under HTTP load.
  pres_test(NAME fault.broker_away LABEL fault TIMEOUT 180
    SOURCES ${CMAKE_SOURCE_DIR}/tests/fault/broker_away.c LIBS ithttp)

  # Stuck subscribers never slow the broker or the others; they resync.
  pres_test(NAME fault.slow_consumer LABEL fault TIMEOUT 180
    SOURCES ${CMAKE_SOURCE_DIR}/tests/fault/slow_consumer.c LIBS ithttp)
endif()

# The soak in a minute (label soak): bench/soak.sh at a light load; checks
# that RSS, fds and the LMDB file are flat after warm-up, not speed. The
# 10-minute run at 50 % of the rated load: bench/soak.sh (bench/RESULTS.md).
if(TARGET presence-bench AND TARGET presence-gateway)
  add_test(NAME soak.short
    COMMAND bash ${CMAKE_SOURCE_DIR}/bench/soak.sh -d 60 -r 2000 -u 2000)
  set_tests_properties(soak.short PROPERTIES
    LABELS soak
    TIMEOUT 180
    SKIP_RETURN_CODE 77
    RUN_SERIAL TRUE
    ENVIRONMENT "PRESENCE_BUILD_DIR=${CMAKE_BINARY_DIR};PRESENCE_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endif()
