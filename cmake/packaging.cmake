# Install rules and the Debian package (CPack DEB), plus the deployment tests.
#
#   cmake --build <dir> --target machub && (cd <dir> && cpack -G DEB)
#     -> machub_<version>_<arch>.deb with
#        /usr/bin/machub
#        /lib/systemd/system/machub.service      (deploy/systemd/machub.service)
#        /etc/machub/machub.toml                 (conffile; deploy/machub.toml)
#        /usr/share/doc/machub/{README.md,DEPLOY_GREENGRASS.md,copyright}
#        postinst: creates the machub system user, enables and starts the service
#
# Depends: computed with dpkg-shlibdeps for native builds; for cross builds (arm64, armhf)
# dpkg-shlibdeps would need the foreign dpkg database, so the list is explicit
# (MACHUB_DEB_CROSS_DEPENDS), kept in step with the native one by tests/deploy/deb_test.sh.
include_guard(GLOBAL)

install(TARGETS machub RUNTIME DESTINATION bin)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/machub.service
        DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/machub.toml DESTINATION /etc/machub)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/DEPLOY_GREENGRASS.md
              ${PROJECT_SOURCE_DIR}/deploy/debian/copyright
        DESTINATION share/doc/machub)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME machub)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "machub maintainers <machub@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "store hub for point-of-sale terminals")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Terminals post sales over HTTP; the hub acknowledges a sale only once it is durable\n\
in its SQLite journal, and uploads batches to S3. Runs as the machub service.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_STRIP_FILES ON)
# Only the hub: the tests and tools of the build tree have no install rules.
set(CPACK_DEB_COMPONENT_INSTALL OFF)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles
    ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
    ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
    ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

if(CMAKE_CROSSCOMPILING)
  if(CMAKE_SYSTEM_PROCESSOR STREQUAL "aarch64")
    set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^arm")
    set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE armhf)
  endif()
  # What the binary's DT_NEEDED libraries come from on Debian 12 / Raspberry Pi OS 12
  # (versions: the ones we build against). libcurl4 is listed ahead of the S3 uploader
  # being linked into the hub.
  set(MACHUB_DEB_CROSS_DEPENDS
      "libc6 (>= 2.34), libgcc-s1 (>= 3.0), libstdc++6 (>= 12), libsqlite3-0 (>= 3.40.0), libssl3 (>= 3.0.0), libcurl4 (>= 7.88.0), zlib1g (>= 1:1.2.0), adduser"
      CACHE STRING "Depends: of the cross-built .deb")
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "${MACHUB_DEB_CROSS_DEPENDS}")
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
else()
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")  # merged with the computed list
endif()

include(CPack)

if(MACHUB_BUILD_TESTS AND NOT CMAKE_CROSSCOMPILING)
  add_subdirectory(${PROJECT_SOURCE_DIR}/tests/deploy ${PROJECT_BINARY_DIR}/tests/deploy)
endif()
