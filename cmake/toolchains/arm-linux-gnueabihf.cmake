# Cross build for 32-bit ARM Linux, hard float, ARMv7 (Raspberry Pi OS 32-bit, where the
# Greengrass nucleus reports architecture "arm" and architecture.detail "armv7l").
# Debian's armhf baseline is ARMv7-A + VFPv3-D16 + Thumb-2: it does not run on ARMv6
# (Pi Zero / Pi 1).
#   cmake -S . -B build/armhf -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-linux-gnueabihf.cmake
set(MACHUB_CROSS_TRIPLET arm-linux-gnueabihf)
set(MACHUB_CROSS_PROCESSOR armv7l)
set(MACHUB_CROSS_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross-common.cmake)
