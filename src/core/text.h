#pragma once
// Small checks on request text shared by every entry type's validation (sales,
// store events). Pure functions, no allocation, callable from any thread.

#include <cstdint>
#include <string_view>

namespace machub::core {

// Characters (code points) of already-validated UTF-8, or -1 when a control character
// (U+0000..U+001F, U+007F) appears: those have no place in a receipt and break CSV and
// log consumers downstream.
inline int64_t Utf8TextLength(std::string_view s) {
  int64_t n = 0;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) return -1;
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

// A client-chosen member name is echoed in an error's "field" only when it is plainly a
// name: 1..64 of [A-Za-z0-9_.-] and no card number. Anything else (a card number used as
// a key, binary junk) is never repeated back.
bool PlainMemberName(std::string_view key);

}  // namespace machub::core
