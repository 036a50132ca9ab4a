#pragma once
// Exact decimal amounts as int64 minor units. No floating point anywhere near money.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace machub::core {

// Parses a plain decimal string ("3.50", "-0.5", "12") into an integer scaled by
// 10^places. More fractional digits than `places`, exponents, spaces, "+", empty
// strings, a lone "." or overflow of int64 -> kInvalidField. Negative only when
// `allow_negative`.
Result<int64_t> ParseDecimal(std::string_view text, int places, bool allow_negative = false);

// An amount in a currency with `minor_units` decimals (0..4): "3.50" -> 350 for USD.
Result<int64_t> ParseAmount(std::string_view text, int minor_units, bool allow_negative = false);

// 350, 2 -> "3.50"; -5, 2 -> "-0.05"; 7, 0 -> "7"; INT64_MIN formats correctly.
std::string FormatAmount(int64_t minor, int minor_units);
// Same for any scaled decimal, trailing zeros kept to `places` digits.
std::string FormatDecimal(int64_t scaled, int places);

// round_half_up(numerator / denominator) for denominator > 0, rounding halves away from
// zero ("half up" on magnitudes, as tills do). Fails on int64 overflow of the result.
Result<int64_t> DivRoundHalfUp(__int128 numerator, int64_t denominator);

}  // namespace machub::core
