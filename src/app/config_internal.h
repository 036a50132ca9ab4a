#pragma once
// What the configuration's two files share (config_keys.cc: the key table; config.cc:
// loading it): the error of a bad value, and how a value is echoed in it. Internal to app/.

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"

namespace machub::app::config_internal {

inline Status Invalid(std::string message) {
  return Status(ErrorCode::kInvalidArgument, std::move(message));
}

// Values are echoed in errors to help the operator, but shortened: a long value is more
// likely a paste accident than something worth reading back.
inline std::string Quote(std::string_view text) {
  std::string out = "\"";
  size_t n = std::min<size_t>(text.size(), 40);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
  }
  if (text.size() > n) out += "...";
  out.push_back('"');
  return out;
}

// The rules of a store id (it becomes part of every S3 key): 1..64 of [A-Za-z0-9._-];
// kInvalidArgument saying which. Defined in config_keys.cc (the store_id key).
Status CheckStoreId(std::string_view s);

}  // namespace machub::app::config_internal
