# Installation and packaging (owner: pkg), included by the top-level
# CMakeLists.txt: `cmake --install` puts the four programs, the systemd
# units (ExecStart from the install prefix), /etc/presence/presence.conf,
# sysusers.d and tmpfiles.d entries and the man pages in place; `cpack -G
# DEB` makes presence_<version>_amd64.deb of the same files
# (docs/packaging.md).
include(GNUInstallDirs)

install(TARGETS presence-broker presence-sweeper presence-gateway presencectl
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The units, the sysusers.d and tmpfiles.d entries and the config are
# placed at install time from the prefix in effect then (cmake --install
# --prefix P, or cpack's /usr), so ExecStart= always names the installed
# programs. systemd reads units, sysusers.d and tmpfiles.d under both
# /usr/lib and /usr/local/lib, so <prefix>/lib suits either prefix. The
# config goes to /etc/presence for the prefix /usr (as GNUInstallDirs puts
# sysconfdir), else to <prefix>/etc/presence; an existing one is kept: it
# is the operator's.
install(CODE "
  set(CMAKE_INSTALL_FULL_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(CMAKE_INSTALL_FULL_SYSCONFDIR /etc)
  else()
    set(CMAKE_INSTALL_FULL_SYSCONFDIR \"\${CMAKE_INSTALL_PREFIX}/etc\")
  endif()
  foreach(unit presence-broker presence-sweeper presence-gateway)
    configure_file(\"${CMAKE_SOURCE_DIR}/deploy/systemd/\${unit}.service.in\"
      \"${CMAKE_BINARY_DIR}/deploy/systemd/\${unit}.service\" @ONLY)
    file(INSTALL \"${CMAKE_BINARY_DIR}/deploy/systemd/\${unit}.service\"
      DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
  endforeach()
  file(INSTALL \"${CMAKE_SOURCE_DIR}/deploy/sysusers.conf\"
    DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/sysusers.d\"
    RENAME presence.conf)
  file(INSTALL \"${CMAKE_SOURCE_DIR}/deploy/tmpfiles.conf\"
    DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/tmpfiles.d\"
    RENAME presence.conf)
  set(conf \"\${CMAKE_INSTALL_FULL_SYSCONFDIR}/presence/presence.conf\")
  if(EXISTS \"\$ENV{DESTDIR}\${conf}\")
    message(STATUS \"Keeping: \$ENV{DESTDIR}\${conf}\")
  else()
    file(INSTALL \"${CMAKE_SOURCE_DIR}/deploy/presence.conf.example\"
      DESTINATION \"\${CMAKE_INSTALL_FULL_SYSCONFDIR}/presence\"
      RENAME presence.conf)
  endif()")
install(FILES ${CMAKE_SOURCE_DIR}/deploy/presence.conf.example
  ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/protocol.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Man pages, written once in scdoc (docs/man/*.scd) and built at build time.
# scdoc is a build dependency (deploy/setup.sh installs it); without it the
# configure step stops, unless PRES_MAN=OFF says to build no man pages (then
# neither the install nor the package has them).
option(PRES_MAN "Build and install the man pages (needs scdoc)" ON)
if(PRES_MAN)
  find_program(PRES_SCDOC scdoc)
  if(NOT PRES_SCDOC)
    message(FATAL_ERROR "presence: scdoc not found (the man pages are "
      "written in it): apt-get install scdoc, or configure with "
      "-DPRES_MAN=OFF to build without man pages")
  endif()
  set(pres_man_pages presencectl.1 presence-broker.8 presence-sweeper.8
    presence-gateway.8 presence.conf.5)
  set(pres_man_out "")
  foreach(page ${pres_man_pages})
    set(in ${CMAKE_SOURCE_DIR}/docs/man/${page}.scd)
    set(roff ${CMAKE_BINARY_DIR}/man/${page})
    set(out ${roff}.gz)
    # Installed compressed, as Debian ships man pages (gzip -9n is
    # reproducible); the plain page stays for `man -l build/man/PAGE`.
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
      COMMAND sh -c "\"$0\" < \"$1\" > \"$2\"" ${PRES_SCDOC} ${in} ${roff}
      COMMAND gzip -9nkf ${roff}
      DEPENDS ${in} COMMENT "scdoc ${page}" VERBATIM)
    list(APPEND pres_man_out ${out})
    string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
    install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man ALL DEPENDS ${pres_man_out})
endif()

# The Debian package: cpack -G DEB in a Release build configured with
# -DCMAKE_INSTALL_PREFIX=/usr (deploy/setup.sh package does both).
set(CPACK_PACKAGE_NAME presence)
set(CPACK_PACKAGE_VENDOR "presence")
set(CPACK_PACKAGE_CONTACT "presence maintainers <presence@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "presence service: who is online, away or offline")
set(CPACK_PACKAGE_DESCRIPTION "A presence service in C on ZeroMQ, \
msgpack and LMDB: an HTTP gateway (JWT, SSE, dashboard), a broker that \
owns the state and sequences every change, a sweeper that ends idle \
sessions on time, and the presencectl command line.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libcurl is dlopened by the etcd client (fail-over), so shlibdeps does not
# see it: named here (merged with the computed list).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libcurl4")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/deploy/debian/conffiles
  ${CMAKE_SOURCE_DIR}/deploy/debian/postinst
  ${CMAKE_SOURCE_DIR}/deploy/debian/prerm
  ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
