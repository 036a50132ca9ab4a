#pragma once
// RFC 3339 timestamps <-> milliseconds since the Unix epoch (UTC).

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace machub::core {

// Accepts "2026-11-27T10:15:00Z", fractional seconds (any digits, truncated to ms),
// "z", and numeric offsets ("+02:00"). Rejects impossible dates -> kInvalidField.
Result<int64_t> ParseRfc3339(std::string_view text);
// Always UTC with milliseconds: "2026-11-27T10:15:00.000Z".
std::string FormatRfc3339(int64_t ms);

}  // namespace machub::core
