# Tests of the broker (owner: broker), and itutil, the integration-test
# helpers every it.* test links (add_library here: this fragment is
# included before ctl/gateway/sweeper ones).
add_library(itutil STATIC ${CMAKE_SOURCE_DIR}/tests/it/itutil.c
  ${CMAKE_SOURCE_DIR}/tests/it/itfake.c)
target_include_directories(itutil PUBLIC ${CMAKE_SOURCE_DIR}/tests/it
  ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(itutil PUBLIC pres_common)

foreach(t live store store_fault state pubs query bounds durable log)
  pres_test(NAME unit.broker_${t} LABEL unit TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_broker_${t}.c
    LIBS broker_core)
endforeach()
foreach(t rules restart malformed authority bounds changelog get_many grace
          audit sched)
  pres_test(NAME it.broker_${t} LABEL it TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/it/broker_${t}.c LIBS itutil)
  set_tests_properties(it.broker_${t} PROPERTIES RESOURCE_LOCK broker_bus)
endforeach()
pres_test(NAME it.broker_burst LABEL it TIMEOUT 180
  SOURCES ${CMAKE_SOURCE_DIR}/tests/it/broker_burst.c LIBS itutil)
pres_test(NAME it.broker_crash_publish LABEL fault TIMEOUT 120
  SOURCES ${CMAKE_SOURCE_DIR}/tests/it/broker_crash_publish.c LIBS itutil)
# The same with the fsync on the loop (fsync_thread = 0).
add_test(NAME it.broker_crash_publish_inline COMMAND test_it_broker_crash_publish)
set_tests_properties(it.broker_crash_publish_inline PROPERTIES LABELS fault
  TIMEOUT 120
  ENVIRONMENT "PRESENCE_BUILD_DIR=${CMAKE_BINARY_DIR};PRESENCE_SOURCE_DIR=${CMAKE_SOURCE_DIR};PRESENCE_FSYNC_THREAD=0")
