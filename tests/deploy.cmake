# Tests of what a newcomer and an operator touch (owner: pkg): the README's
# first steps against deploy/run-local.sh, and the systemd units.
if(PRES_CURL AND TARGET presence-gateway AND TARGET presencectl)
  add_test(NAME it.walkthrough
    COMMAND bash ${CMAKE_SOURCE_DIR}/tests/it/walkthrough.sh
            ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(it.walkthrough PROPERTIES LABELS it TIMEOUT 120)
else()
  list(APPEND PRES_SKIPPED "it.walkthrough (curl)")
endif()

# The systemd units: verify is silent, each scores <= 2.5 in
# `systemd-analyze security --offline=true`; sysusers/tmpfiles entries work.
find_program(PRES_SYSTEMD_ANALYZE systemd-analyze)
if(PRES_SYSTEMD_ANALYZE)
  add_test(NAME unit.systemd_units
    COMMAND bash ${CMAKE_SOURCE_DIR}/tests/deploy/check-units.sh
            ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(unit.systemd_units PROPERTIES LABELS unit TIMEOUT 60)
else()
  list(APPEND PRES_SKIPPED "unit.systemd_units (systemd)")
endif()

# The units' system-call filter against the calls the daemons really make
# (the walkthrough under strace -f). Not in sanitizer builds: their runtime
# makes calls of its own that production binaries do not.
find_program(PRES_STRACE strace)
if(PRES_SANITIZE OR PRES_FUZZ)
  # nothing: the plain build runs it
elseif(PRES_STRACE AND PRES_SYSTEMD_ANALYZE AND PRES_CURL AND TARGET presence-gateway
   AND TARGET presencectl)
  add_test(NAME it.unit_syscalls
    COMMAND bash ${CMAKE_SOURCE_DIR}/tests/deploy/check-syscalls.sh
            ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(it.unit_syscalls PROPERTIES LABELS it TIMEOUT 180)
else()
  list(APPEND PRES_SKIPPED "it.unit_syscalls (strace, systemd, curl)")
endif()
