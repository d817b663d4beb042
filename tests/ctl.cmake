# Tests of presencectl (owner: ctl). Unit tests link ctl_core; the
# integration test drives the real binary against a real broker.
if(TARGET ctl_core)
  foreach(m args out)
    pres_test(NAME unit.ctl_${m} LABEL unit TIMEOUT 60
      SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_ctl_${m}.c
      LIBS ctl_core)
  endforeach()
endif()

# Integration: the presencectl binary against a real broker.
if(TARGET itutil AND TARGET presencectl)
  foreach(t commands watch_resync replay)
    pres_test(NAME it.ctl_${t} LABEL it TIMEOUT 60
      SOURCES ${CMAKE_SOURCE_DIR}/tests/it/ctl_${t}.c LIBS itutil)
  endforeach()
endif()
