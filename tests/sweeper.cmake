# Tests of the sweeper (owner: sweeper). Unit tests link sweeper_core;
# integration tests start the real broker and sweeper.
if(TARGET sweeper_core)
  foreach(m tick clone)
    pres_test(NAME unit.sweeper_${m} LABEL unit TIMEOUT 60
      SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_sweeper_${m}.c
      LIBS sweeper_core)
  endforeach()
endif()
