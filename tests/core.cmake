# Integration tests of the shared bus setup (owner: core).
if(TARGET itutil)
  pres_test(NAME it.curve_tcp LABEL it TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/it/curve_tcp.c LIBS itutil)
  pres_test(NAME it.broker_group_commit LABEL it TIMEOUT 120
    SOURCES ${CMAKE_SOURCE_DIR}/tests/it/broker_group_commit.c LIBS itutil)
  pres_test(NAME it.broker_lastseen LABEL it TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/it/broker_lastseen.c LIBS itutil)
endif()
