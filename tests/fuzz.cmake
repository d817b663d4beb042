# Fuzz targets (owner: fault). Every target's corpus is replayed in every
# build (label fuzz, cheap); with -DPRES_FUZZ=ON (clang) each target also
# runs libFuzzer for a bounded time, starting from that corpus (label
# fuzz-run). Long runs, outside CI: see docs/fuzzing.md.
#   msg     every bus decoder (events, changes, notices, queries, JSON view)
#   jwt     the bearer-token verifier
#   config  the config file parser (accepted configs must print and reload)
#   query   query decoding and broker_query_answer on a small LMDB state
#   http    the gateway's request handling, a real gateway in-process
set(pres_fuzz_targets msg config)
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_jwt.c AND TARGET pres_jwt)
  list(APPEND pres_fuzz_targets jwt)
endif()
if(TARGET broker_core)
  list(APPEND pres_fuzz_targets query)
endif()
if(TARGET gateway_core)
  list(APPEND pres_fuzz_targets http)
endif()
if(PRES_FUZZ)
  add_custom_target(fuzz_all)
endif()
foreach(t ${pres_fuzz_targets})
  set(libs "")
  if(t STREQUAL "jwt")
    set(libs pres_jwt)
  elseif(t STREQUAL "query")
    set(libs broker_core)
  elseif(t STREQUAL "http")
    set(libs gateway_core)
  endif()
  set(corpus ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${t})
  pres_test(NAME fuzz.${t}.corpus LABEL fuzz TIMEOUT 120
    SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${t}.c
            ${CMAKE_SOURCE_DIR}/tests/fuzz/replay.c
    LIBS ${libs} ARGS ${corpus})
  if(PRES_FUZZ)
    add_executable(fuzz_${t} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${t}.c)
    target_compile_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_${t} PRIVATE ${libs} pres_common)
    add_dependencies(fuzz_all fuzz_${t})
    set(work ${CMAKE_BINARY_DIR}/fuzz-corpus/${t})
    file(MAKE_DIRECTORY ${work})
    # -close_fd_mask=2: the config and query targets log every refusal.
    add_test(NAME fuzz.${t} COMMAND fuzz_${t} -max_total_time=30
      -rss_limit_mb=2048 -timeout=5 -close_fd_mask=2 ${work} ${corpus})
    set_tests_properties(fuzz.${t} PROPERTIES LABELS fuzz-run TIMEOUT 120)
  endif()
endforeach()
