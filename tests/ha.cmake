# Fail-over tests (owner: ha). They start their own etcd on free loopback
# ports and skip (exit 77) when etcd is not installed.
if(TARGET pres_jwt AND TARGET itutil)
  foreach(mode failover etcd3 cutoff)
    pres_test(NAME it.ha_${mode} LABEL ha TIMEOUT 120
      SOURCES ${CMAKE_SOURCE_DIR}/tests/it/ha_failover.c
      LIBS itutil pres_jwt PkgConfig::CURL ARGS ${mode})
    set_tests_properties(it.ha_${mode} PROPERTIES SKIP_RETURN_CODE 77
      RESOURCE_LOCK etcd)
  endforeach()
endif()
# Gateways on many hosts: network namespaces (root only; skips otherwise).
if(TARGET pres_jwt AND TARGET itutil)
  pres_test(NAME it.netns_gateways LABEL netns TIMEOUT 120
    SOURCES ${CMAKE_SOURCE_DIR}/tests/it/netns_gateways.c
    LIBS itutil pres_jwt PkgConfig::CURL)
  set_tests_properties(it.netns_gateways PROPERTIES SKIP_RETURN_CODE 77)
endif()
