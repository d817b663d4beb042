# bench-smoke (owner: bench): each benchmark of bench/run.sh in its tiny
# --quick setup. Checks only that it runs and that nothing is lost (no
# speed threshold). Exit 77 = skipped (a daemon not built). bus needs
# redis-server and redis-benchmark, http needs wrk and nginx: without them
# those two are not defined.
find_program(PRES_REDIS_SERVER redis-server)
find_program(PRES_REDIS_BENCHMARK redis-benchmark)
find_program(PRES_WRK wrk)
find_program(PRES_NGINX nginx PATHS /usr/sbin)
set(pres_benches fanout expiry cost scale changelog)
if(PRES_REDIS_SERVER AND PRES_REDIS_BENCHMARK)
  list(APPEND pres_benches bus many memory)
else()
  list(APPEND PRES_SKIPPED "bench-smoke.bus (redis-server, redis-tools)")
  list(APPEND PRES_SKIPPED "bench-smoke.many (redis-server, redis-tools)")
  list(APPEND PRES_SKIPPED "bench-smoke.memory (redis-server, redis-tools)")
endif()
if(PRES_WRK AND PRES_NGINX)
  list(APPEND pres_benches http)
else()
  list(APPEND PRES_SKIPPED "bench-smoke.http (wrk, nginx-light)")
endif()
if(TARGET presence-bench)
  foreach(b ${pres_benches})
    add_test(NAME bench-smoke.${b}
      COMMAND bash ${CMAKE_SOURCE_DIR}/bench/run.sh --quick ${b})
    set_tests_properties(bench-smoke.${b} PROPERTIES
      LABELS bench-smoke
      TIMEOUT 120
      SKIP_RETURN_CODE 77
      RUN_SERIAL TRUE
      ENVIRONMENT "PRESENCE_BUILD_DIR=${CMAKE_BINARY_DIR};PRESENCE_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  endforeach()
endif()
