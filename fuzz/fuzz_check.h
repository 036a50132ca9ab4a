#pragma once
// Invariant checks for the fuzz targets: a violated invariant prints what broke and traps,
// so libFuzzer records the input as a crash (build/fuzz/crashes/).

#include <cstdio>
#include <string_view>

namespace machub::fuzz {

inline void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  __builtin_trap();
}

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace machub::fuzz
