#include "core/text.h"

#include "core/card_number.h"

namespace machub::core {

std::string FieldPath::str() const {
  std::string out;
  if (!array.empty()) {
    out.append(array);
    out.push_back('[');
    out.append(std::to_string(index));
    out.push_back(']');
    if (!member.empty()) out.push_back('.');
  }
  out.append(member);
  return out;
}

std::string TextLengthProblem(int64_t chars, int64_t min_chars, int64_t max_chars) {
  if (chars < 0) return "must not contain control characters";
  if (chars >= min_chars && chars <= max_chars) return {};
  if (min_chars > 0) {
    return "must be " + std::to_string(min_chars) + " to " + std::to_string(max_chars) +
           " characters long";
  }
  return "must be at most " + std::to_string(max_chars) + " characters long";
}

bool IdCharacters(std::string_view s, bool allow_colon) {
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || (allow_colon && c == ':');
    if (!ok) return false;
  }
  return true;
}

bool PlainMemberName(std::string_view key) {
  if (key.empty() || key.size() > 64) return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return !ContainsCardNumber(key);
}

}  // namespace machub::core
