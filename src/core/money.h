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

// The same output appended to `out` without a temporary string (hot paths: canonical
// encoding). With `trim_zeros`, trailing fractional zeros and a bare '.' are dropped:
// (2500, 3) -> "2.5", (2000, 3) -> "2", (0, 6) -> "0". `places` is 0..18 (clamped).
void AppendDecimal(std::string* out, int64_t scaled, int places, bool trim_zeros = false);

// Why a decimal string was refused, for callers that word their own error messages
// (the sale codec) and for hot paths that do not want a Status per field.
enum class DecimalError { kOk, kSyntax, kTooManyPlaces, kNegative, kOverflow };
// ParseDecimal without the Status: the value goes to *out only on kOk. The grammar is
// exactly: optional '-', one or more ASCII digits, optionally '.' and one or more
// digits. Leading zeros are accepted ("007.5"); "1." and ".5" are not. "-0" is a
// negative sign, so it is kNegative unless `allow_negative` (then it is 0). `places`
// outside 0..18 is kSyntax (ParseDecimal: kInvalidArgument).
DecimalError ParseDecimalTo(std::string_view text, int places, bool allow_negative, int64_t* out);

// A 128-bit integer for intermediate products (qty x price, net x rate). Spelled with
// __extension__ so -Wpedantic stays quiet; it is exactly __int128.
__extension__ using Int128 = __int128;

// round_half_up(numerator / denominator) for denominator > 0, rounding halves away from
// zero ("half up" on magnitudes, as tills do). Fails on int64 overflow of the result.
Result<int64_t> DivRoundHalfUp(Int128 numerator, int64_t denominator);

}  // namespace machub::core
