# Test peers: programs and scripts that tests start on loopback (see TESTING.md).
#   rgw.sh       a throw-away Ceph cluster with radosgw (real S3)
#   dynalite.sh  dynalite on loopback (real DynamoDB API; npm, pinned in npm/package-lock.json)
#   fault_proxy  a TCP proxy that injects network faults, driven over a control port
#   machub_test_peers  INTERFACE target for C++ tests: test_peers.h plus the paths it needs
# Included once, by the top-level CMakeLists.txt when tests are built (before the modules,
# whose tests link machub_test_peers).
include_guard(GLOBAL)

add_executable(fault_proxy ${CMAKE_CURRENT_LIST_DIR}/fault_proxy.cc)
target_link_libraries(fault_proxy PRIVATE machub_options)

add_library(machub_test_peers INTERFACE)
target_include_directories(machub_test_peers INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(machub_test_peers INTERFACE
  MACHUB_PEERS_RGW_SH="${CMAKE_CURRENT_LIST_DIR}/rgw.sh"
  MACHUB_PEERS_DYNALITE_SH="${CMAKE_CURRENT_LIST_DIR}/dynalite.sh"
  MACHUB_PEERS_FAULT_PROXY="$<TARGET_FILE:fault_proxy>")
add_dependencies(machub_test_peers fault_proxy)
