# bench-smoke (owner: bench): each benchmark of bench/run.sh in its tiny
# --quick setup. Checks only that it runs and that nothing is lost (no
# speed threshold). Exit 77 = skipped (wrk/nginx/redis missing and not
# root to install them, or a daemon not built).
if(TARGET presence-bench)
  foreach(b bus fanout expiry scale http changelog many)
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
