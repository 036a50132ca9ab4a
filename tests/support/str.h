#pragma once
// Str(prefix, n): prefix + n, for the ids and names tests generate (test support, never in
// the hub). Not `"literal" + std::to_string(n)`: GCC 12 at -O2 warns falsely on that
// (-Wrestrict, GCC bug 105329), and the release build treats warnings as errors.

#include <cstdint>
#include <string>
#include <string_view>

namespace machub::testing {

inline std::string Str(std::string_view prefix, int64_t n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

}  // namespace machub::testing
