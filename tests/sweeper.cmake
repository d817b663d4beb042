# Tests of the sweeper (owner: sweeper). Unit tests link sweeper_core;
# integration tests start the real broker and sweeper.
if(TARGET sweeper_core)
  pres_test(NAME unit.sweeper_due LABEL unit TIMEOUT 60
    SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_sweeper_due.c
    LIBS sweeper_core)
endif()

# Integration: real broker + sweeper in a temp dir, timeout 2 s. Timed
# against the contract\'s deadlines (docs/protocol.md section 2) (1 s), so they do not run beside each other.
if(TARGET itutil AND TARGET presence-sweeper)
  foreach(t expiry restart many fake_broker)
    pres_test(NAME it.sweeper_${t} LABEL it TIMEOUT 60
      SOURCES ${CMAKE_SOURCE_DIR}/tests/it/sweeper_${t}.c LIBS itutil)
    set_tests_properties(it.sweeper_${t} PROPERTIES RESOURCE_LOCK broker_bus)
  endforeach()
endif()
