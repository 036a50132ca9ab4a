#include "core/money.h"

#include <limits>

namespace machub::core {
namespace {

constexpr int kMaxPlaces = 18;  // 10^18 is the largest power of ten in int64

constexpr uint64_t kPow10[kMaxPlaces + 1] = {1ULL,
                                             10ULL,
                                             100ULL,
                                             1000ULL,
                                             10000ULL,
                                             100000ULL,
                                             1000000ULL,
                                             10000000ULL,
                                             100000000ULL,
                                             1000000000ULL,
                                             10000000000ULL,
                                             100000000000ULL,
                                             1000000000000ULL,
                                             10000000000000ULL,
                                             100000000000000ULL,
                                             1000000000000000ULL,
                                             10000000000000000ULL,
                                             100000000000000000ULL,
                                             1000000000000000000ULL};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

DecimalError ParseDecimalTo(std::string_view text, int places, bool allow_negative, int64_t* out) {
  if (places < 0 || places > kMaxPlaces) return DecimalError::kSyntax;
  size_t i = 0;
  const size_t n = text.size();
  bool negative = false;
  if (i < n && text[i] == '-') {
    negative = true;
    ++i;
  }
  const size_t int_begin = i;
  while (i < n && IsDigit(text[i])) ++i;
  const size_t int_end = i;
  if (int_end == int_begin) return DecimalError::kSyntax;  // "", "-", ".5", "+1", " 1"
  size_t frac_begin = i;
  size_t frac_end = i;
  if (i < n && text[i] == '.') {
    frac_begin = ++i;
    while (i < n && IsDigit(text[i])) ++i;
    frac_end = i;
    if (frac_end == frac_begin) return DecimalError::kSyntax;  // "1."
  }
  if (i != n) return DecimalError::kSyntax;  // exponents, spaces, anything trailing
  if (frac_end - frac_begin > static_cast<size_t>(places)) return DecimalError::kTooManyPlaces;
  // Checked after the grammar so that "-abc" is a syntax error, not a sign error.
  if (negative && !allow_negative) return DecimalError::kNegative;

  // Accumulate the magnitude as unsigned so that INT64_MIN (magnitude 2^63) is reachable.
  const uint64_t limit =
      negative ? uint64_t{1} << 63 : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t mag = 0;
  auto push = [&](unsigned d) {
    if (mag > (limit - d) / 10) return false;
    mag = mag * 10 + d;
    return true;
  };
  for (size_t k = int_begin; k < int_end; ++k) {
    if (!push(static_cast<unsigned>(text[k] - '0'))) return DecimalError::kOverflow;
  }
  for (size_t k = frac_begin; k < frac_end; ++k) {
    if (!push(static_cast<unsigned>(text[k] - '0'))) return DecimalError::kOverflow;
  }
  for (size_t k = frac_end - frac_begin; k < static_cast<size_t>(places); ++k) {
    if (!push(0)) return DecimalError::kOverflow;
  }
  // Two's-complement negation of the magnitude; well defined for 2^63 via unsigned math.
  *out = negative ? static_cast<int64_t>(~mag + 1) : static_cast<int64_t>(mag);
  return DecimalError::kOk;
}

Result<int64_t> ParseDecimal(std::string_view text, int places, bool allow_negative) {
  if (places < 0 || places > kMaxPlaces) {
    return Status(ErrorCode::kInvalidArgument, "decimal places must be between 0 and 18");
  }
  int64_t value = 0;
  switch (ParseDecimalTo(text, places, allow_negative, &value)) {
    case DecimalError::kOk:
      return value;
    case DecimalError::kSyntax:
      return Status(ErrorCode::kInvalidField, "value is not a plain decimal number");
    case DecimalError::kTooManyPlaces:
      return Status(ErrorCode::kInvalidField,
                    "value has more than " + std::to_string(places) + " decimal places");
    case DecimalError::kNegative:
      return Status(ErrorCode::kInvalidField, "value must not be negative");
    case DecimalError::kOverflow:
      return Status(ErrorCode::kInvalidField, "value is too large");
  }
  return Status(ErrorCode::kInternal, "unreachable");
}

Result<int64_t> ParseAmount(std::string_view text, int minor_units, bool allow_negative) {
  return ParseDecimal(text, minor_units, allow_negative);
}

void AppendDecimal(std::string* out, int64_t scaled, int places, bool trim_zeros) {
  if (places < 0) places = 0;
  if (places > kMaxPlaces) places = kMaxPlaces;
  // Unsigned magnitude: -INT64_MIN does not exist as an int64.
  const uint64_t mag =
      scaled < 0 ? ~static_cast<uint64_t>(scaled) + 1 : static_cast<uint64_t>(scaled);
  const uint64_t int_part = mag / kPow10[places];
  uint64_t frac_part = mag % kPow10[places];

  char buf[48];
  char* end = buf + sizeof(buf);
  char* p = end;
  int frac_digits = places;
  if (trim_zeros) {
    while (frac_digits > 0 && frac_part % 10 == 0) {
      frac_part /= 10;
      --frac_digits;
    }
  }
  for (int k = 0; k < frac_digits; ++k) {
    *--p = static_cast<char>('0' + frac_part % 10);
    frac_part /= 10;
  }
  if (frac_digits > 0) *--p = '.';
  uint64_t v = int_part;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  if (scaled < 0) *--p = '-';
  out->append(p, static_cast<size_t>(end - p));
}

std::string FormatDecimal(int64_t scaled, int places) {
  std::string out;
  AppendDecimal(&out, scaled, places);
  return out;
}

std::string FormatAmount(int64_t minor, int minor_units) {
  return FormatDecimal(minor, minor_units);
}

Result<int64_t> DivRoundHalfUp(Int128 numerator, int64_t denominator) {
  if (denominator <= 0) {
    return Status(ErrorCode::kInvalidArgument, "denominator must be positive");
  }
  // C++ division truncates toward zero, so the quotient's magnitude is rounded down and
  // the remainder has the numerator's sign; bumping the magnitude when the remainder is at
  // least half the denominator rounds halves away from zero for both signs.
  Int128 q = numerator / denominator;
  const Int128 r = numerator % denominator;
  const Int128 abs_r = r < 0 ? -r : r;
  if (2 * abs_r >= denominator) q += numerator < 0 ? -1 : 1;
  if (q > std::numeric_limits<int64_t>::max() || q < std::numeric_limits<int64_t>::min()) {
    return Status(ErrorCode::kInvalidField, "amount is too large");
  }
  return static_cast<int64_t>(q);
}

}  // namespace machub::core
