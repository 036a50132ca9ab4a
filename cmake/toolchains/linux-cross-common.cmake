# Shared part of the Debian multiarch cross toolchains (aarch64-linux-gnu.cmake,
# arm-linux-gnueabihf.cmake). The including file sets MACHUB_CROSS_TRIPLET,
# MACHUB_CROSS_PROCESSOR and MACHUB_CROSS_QEMU before including this one.
#
# Debian's cross compilers (g++-<triplet>) are multiarch-aware: with the foreign
# architecture added (dpkg --add-architecture) and its -dev packages installed, headers
# are found in /usr/include and /usr/include/<triplet>, libraries in /usr/lib/<triplet>.
# So there is no separate sysroot: the find root is "/", and CMake's library search
# uses CMAKE_LIBRARY_ARCHITECTURE to pick /usr/lib/<triplet> (never the host's
# /usr/lib/x86_64-linux-gnu).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${MACHUB_CROSS_PROCESSOR})
set(CMAKE_C_COMPILER ${MACHUB_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${MACHUB_CROSS_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${MACHUB_CROSS_TRIPLET})
set(CMAKE_STRIP ${MACHUB_CROSS_TRIPLET}-strip CACHE FILEPATH "strip for the target")

# Programs (protoc-like helpers, qemu) come from the host; libraries and headers from the
# multiarch folders only.
set(CMAKE_FIND_ROOT_PATH /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Find modules that ask pkg-config (FindOpenSSL, FindCURL...) must read the target's .pc
# files, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${MACHUB_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Test binaries (gtest_discover_tests at build time, ctest) run under qemu-user. The
# foreign libc6 from multiarch provides /lib/<loader> and the libraries, so no -L prefix
# is needed.
find_program(MACHUB_CROSS_EMULATOR ${MACHUB_CROSS_QEMU})
if(MACHUB_CROSS_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${MACHUB_CROSS_EMULATOR})
endif()
