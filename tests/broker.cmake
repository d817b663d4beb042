# Tests of the broker (owner: broker), and itutil, the integration-test
# helpers every it.* test links (add_library here: this fragment is
# included before ctl/gateway/sweeper ones).
add_library(itutil STATIC ${CMAKE_SOURCE_DIR}/tests/it/itutil.c)
target_include_directories(itutil PUBLIC ${CMAKE_SOURCE_DIR}/tests/it
  ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(itutil PUBLIC pres_common)
