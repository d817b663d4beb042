# Unit tests of common/ (owner: core).
foreach(m mp mpw msg config bus ids grow sched)
  if(EXISTS ${CMAKE_SOURCE_DIR}/tests/unit/test_${m}.c)
    pres_test(NAME unit.${m} LABEL unit TIMEOUT 60
      SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_${m}.c)
  endif()
endforeach()
