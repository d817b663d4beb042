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
