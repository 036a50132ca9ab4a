# Cross build for 64-bit ARM Linux (Raspberry Pi 4B on Raspberry Pi OS 64-bit, where the
# Greengrass nucleus reports architecture "aarch64").
#   cmake -S . -B build/aarch64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
# Needs: g++-aarch64-linux-gnu, qemu-user, and the arm64 -dev packages
# (scripts/cross-deps.sh arm64 installs them; scripts/build-aarch64.sh does everything).
set(MACHUB_CROSS_TRIPLET aarch64-linux-gnu)
set(MACHUB_CROSS_PROCESSOR aarch64)
set(MACHUB_CROSS_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross-common.cmake)
