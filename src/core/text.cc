#include "core/text.h"

#include "core/card_number.h"

namespace machub::core {

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
