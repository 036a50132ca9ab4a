#pragma once
// Small string helpers every module shares (one home each): ASCII case folding and
// trimming. Locale-independent, no allocation except AsciiLower's result; any thread.

#include <string>
#include <string_view>

namespace machub::core {

// `s` with A-Z turned into a-z; every other byte unchanged (UTF-8 passes through).
inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// `s` without the leading and trailing bytes that appear in `chars`.
inline std::string_view TrimChars(std::string_view s, std::string_view chars) {
  const size_t first = s.find_first_not_of(chars);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(chars) - first + 1);
}

// Spaces and tabs only: HTTP's optional whitespace (RFC 9110 "OWS").
inline std::string_view TrimSpaceTab(std::string_view s) { return TrimChars(s, " \t"); }

// Spaces, tabs, CR and LF: configuration values, file lines, header values.
inline std::string_view TrimWhitespace(std::string_view s) { return TrimChars(s, " \t\r\n"); }

}  // namespace machub::core
