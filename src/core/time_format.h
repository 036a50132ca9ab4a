#pragma once
// RFC 3339 timestamps <-> milliseconds since the Unix epoch (UTC).

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace machub::core {

// Accepts "2026-11-27T10:15:00Z", fractional seconds (any digits, truncated to ms),
// "z", and numeric offsets ("+02:00"). Rejects impossible dates -> kInvalidField.
// Exactly RFC 3339 section 5.6 "date-time": a 4-digit year (0000-9999), 'T' or 't',
// offsets "+hh:mm"/"-hh:mm" with hh <= 23. A leap second (":60") is refused (POSIX
// clocks never show one). No spaces, no "+0200", no missing seconds.
Result<int64_t> ParseRfc3339(std::string_view text);
// Always UTC with milliseconds: "2026-11-27T10:15:00.000Z". Negative values (before
// 1970) are exact too; years outside 0..9999 are printed with as many digits as needed.
std::string FormatRfc3339(int64_t ms);

// A local time of day "HH:MM" (00:00..23:59, two digits each) as minutes after midnight;
// kInvalidArgument otherwise.
Result<int> ParseTimeOfDay(std::string_view text);
// The latest instant <= now_ms at which the local wall clock (the process's time zone:
// TZ, else /etc/localtime) read `minute_of_day`, in ms since the epoch. Across a daylight
// saving change a time that does not exist that day is taken as mktime normalises it.
int64_t LastLocalTimeOfDay(int64_t now_ms, int minute_of_day);

}  // namespace machub::core
