# Fuzz targets (owner: core). Every target's corpus is replayed in every
# build (label fuzz, cheap); with -DPRES_FUZZ=ON (clang) each target also
# runs libFuzzer for a bounded time, starting from that corpus.
set(pres_fuzz_targets msg)
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_jwt.c AND TARGET pres_jwt)
  list(APPEND pres_fuzz_targets jwt)
endif()
if(PRES_FUZZ)
  add_custom_target(fuzz_all)
endif()
foreach(t ${pres_fuzz_targets})
  set(libs "")
  if(t STREQUAL "jwt")
    set(libs pres_jwt)
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
    add_test(NAME fuzz.${t} COMMAND fuzz_${t} -max_total_time=30
      -rss_limit_mb=2048 -timeout=5 ${work} ${corpus})
    set_tests_properties(fuzz.${t} PROPERTIES LABELS fuzz-run TIMEOUT 120)
  endif()
endforeach()
