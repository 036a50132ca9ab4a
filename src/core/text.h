#pragma once
// Small checks on request text shared by every entry type's validation (sales,
// store events). Pure functions, no allocation, callable from any thread.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace machub::core {

// The longest prefix of `s` of at most `max_bytes` bytes that does not end inside a UTF-8
// sequence (a cut never leaves half a character for a strict JSON writer to choke on).
inline std::string_view Utf8Prefix(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

// [A-Za-z0-9._-]{1,32}: a terminal id (docs/API.md).
inline bool ValidTerminalId(std::string_view id) {
  if (id.empty() || id.size() > 32) return false;
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Exactly 64 lower-case hex digits: a token's SHA-256 as the hub keeps it.
inline bool ValidSha256Hex(std::string_view hex) {
  if (hex.size() != 64) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

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

// The JSON path of a field ("lines[2].qty", "products[12].price", "cashier"), turned
// into a string only for an error: a valid document never pays for its fields' paths.
// The views must outlive the path (string literals and member names in practice).
struct FieldPath {
  std::string_view array;  // "lines", "payments", "products"; empty for a root member
  size_t index = 0;
  std::string_view member;  // empty for the array element itself

  constexpr FieldPath() = default;
  // A root member.
  constexpr FieldPath(std::string_view root_member)  // NOLINT(google-explicit-constructor)
      : member(root_member) {}
  constexpr FieldPath(const char* root_member)  // NOLINT(google-explicit-constructor)
      : member(root_member) {}
  constexpr FieldPath(std::string_view array_name, size_t element, std::string_view name = {})
      : array(array_name), index(element), member(name) {}

  std::string str() const;
  std::string Name() const { return std::string(member); }  // the member alone
  FieldPath Member(std::string_view name) const { return FieldPath(array, index, name); }
};

// What is wrong with a text field of `chars` characters (Utf8TextLength; -1: a control
// character) against the rule min_chars..max_chars: "" when it holds, else "must not
// contain control characters", "must be MIN to MAX characters long" (MIN > 0) or "must
// be at most MAX characters long".
std::string TextLengthProblem(int64_t chars, int64_t min_chars, int64_t max_chars);

// Only [A-Za-z0-9._-] (and ':' when allow_colon): the id alphabet of docs/API.md.
bool IdCharacters(std::string_view s, bool allow_colon);

// A client-chosen member name is echoed in an error's "field" only when it is plainly a
// name: 1..64 of [A-Za-z0-9_.-] and no card number. Anything else (a card number used as
// a key, binary junk) is never repeated back.
bool PlainMemberName(std::string_view key);

}  // namespace machub::core
