#include "core/card_number.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

namespace machub::core {
namespace {

constexpr size_t kMinPan = 13;
constexpr size_t kMaxPan = 19;
constexpr int kMaxSeparators = 4;  // between two digits of one run

bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

int Doubled(int d) { return d * 2 > 9 ? d * 2 - 9 : d * 2; }

// The first code point ("zero") of every block of ten Unicode decimal digits (Nd).
constexpr std::array<char32_t, 68> kDigitZeros = {
    0x0030,  0x0660,  0x06F0,  0x07C0,  0x0966,  0x09E6,  0x0A66,  0x0AE6,  0x0B66,  0x0BE6,
    0x0C66,  0x0CE6,  0x0D66,  0x0DE6,  0x0E50,  0x0ED0,  0x0F20,  0x1040,  0x1090,  0x17E0,
    0x1810,  0x1946,  0x19D0,  0x1A80,  0x1A90,  0x1B50,  0x1BB0,  0x1C40,  0x1C50,  0xA620,
    0xA8D0,  0xA900,  0xA9D0,  0xA9F0,  0xAA50,  0xABF0,  0xFF10,  0x104A0, 0x10D30, 0x11066,
    0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0,
    0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x11F50, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8,
    0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E950, 0x1FBF0};

// The digit's value 0-9, or -1 when `cp` is not a decimal digit.
int DigitValue(char32_t cp) {
  if (cp >= '0' && cp <= '9') return static_cast<int>(cp - '0');
  if (cp < 0x0660) return -1;
  auto it = std::upper_bound(kDigitZeros.begin(), kDigitZeros.end(), cp);
  if (it == kDigitZeros.begin()) return -1;
  const char32_t zero = *(it - 1);
  return cp - zero < 10 ? static_cast<int>(cp - zero) : -1;
}

bool IsSeparator(char32_t cp) {
  switch (cp) {
    case ' ':
    case '.':
    case '_':
    case '-':
    case '/':
    case '\\':
    case ',':
    case 0x00A0:  // no-break space
    case 0x00B7:  // middle dot
    case 0x2024:  // one dot leader
    case 0x2044:  // fraction slash
    case 0x202F:  // narrow no-break space
    case 0x205F:  // medium mathematical space
    case 0x2212:  // minus sign
    case 0x2215:  // division slash
    case 0x3000:  // ideographic space
    case 0x3002:  // ideographic full stop
    case 0xFE58:
    case 0xFE63:  // small em dash, small hyphen-minus
    case 0xFF0C:
    case 0xFF0D:
    case 0xFF0E:
    case 0xFF0F:
    case 0xFF3F:
      return true;
    default:
      return (cp >= 0x2000 && cp <= 0x200B) ||  // en quad .. zero width space
             (cp >= 0x2010 && cp <= 0x2015);    // hyphen .. horizontal bar
  }
}

// Decodes one UTF-8 code point at text[*i] and advances *i. Invalid sequences give
// U+FFFD (an "other" character) and advance one byte.
char32_t NextCodePoint(std::string_view text, size_t* i) {
  const auto b0 = static_cast<unsigned char>(text[*i]);
  if (b0 < 0x80) {
    ++*i;
    return b0;
  }
  int len = 0;
  char32_t cp = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    ++*i;
    return 0xFFFD;
  }
  if (*i + len > text.size()) {
    ++*i;
    return 0xFFFD;
  }
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[*i + k]);
    if ((b & 0xC0) != 0x80) {
      ++*i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  *i += len;
  return cp;
}

// Runs longer than a PAN: is any contiguous window of 13..19 digits Luhn-valid? Prefix
// sums per position parity make each window O(1), so a long numeric blob costs O(n).
bool AnyWindowValid(const std::string& digits) {
  const size_t n = digits.size();
  // plain[q][k] / dbl[q][k]: sum over positions p < k with p % 2 == q of the digit, or
  // of its Luhn-doubled value.
  std::vector<int64_t> plain[2] = {std::vector<int64_t>(n + 1), std::vector<int64_t>(n + 1)};
  std::vector<int64_t> dbl[2] = {std::vector<int64_t>(n + 1), std::vector<int64_t>(n + 1)};
  for (size_t p = 0; p < n; ++p) {
    const int d = digits[p] - '0';
    for (int q = 0; q < 2; ++q) {
      const bool here = static_cast<int>(p % 2) == q;
      plain[q][p + 1] = plain[q][p] + (here ? d : 0);
      dbl[q][p + 1] = dbl[q][p] + (here ? Doubled(d) : 0);
    }
  }
  for (size_t len = kMinPan; len <= kMaxPan; ++len) {
    for (size_t s = 0; s + len <= n; ++s) {
      const size_t e = s + len;
      // The check digit (the window's last) is not doubled; every second one before it is.
      const int keep = static_cast<int>((e - 1) % 2);
      const int64_t sum = plain[keep][e] - plain[keep][s] + dbl[1 - keep][e] - dbl[1 - keep][s];
      if (sum % 10 == 0) return true;
    }
  }
  return false;
}

// GS1 check digit (EAN-13, GTIN-14): weights 3,1,3,... from the right, check digit excluded.
bool GtinValid(std::string_view digits) {
  int sum = 0;
  for (size_t i = 1; i < digits.size(); ++i) {
    const int d = digits[digits.size() - 1 - i] - '0';
    sum += (i % 2 == 1) ? 3 * d : d;
  }
  return (10 - sum % 10) % 10 == digits.back() - '0';
}

// One run's digits (ASCII, normalised) and the offsets where its groups start.
bool RunContainsCard(const std::string& digits, std::vector<size_t>* groups) {
  // A bare EAN-13 / GTIN-14 product code (one group, valid GS1 check digit) is a barcode,
  // not a card: about one in ten of them also passes Luhn, and skus are scanned barcodes.
  if (groups->size() == 1 && (digits.size() == 13 || digits.size() == 14) && GtinValid(digits)) {
    return false;
  }
  groups->push_back(digits.size());  // sentinel: end of the last group
  // Whole groups in a row: the run itself, and a PAN that a separator joins to other
  // numbers ("qty 2 4111 1111 1111 1111"). Windows that cut through a group are not
  // tried: processors issue 16-digit tokens that deliberately fail Luhn, and more than
  // half of those have a Luhn-valid 13..15-digit window.
  for (size_t g = 0; g + 1 < groups->size(); ++g) {
    for (size_t h = g + 1; h < groups->size(); ++h) {
      const size_t len = (*groups)[h] - (*groups)[g];
      if (len > kMaxPan) break;
      if (len >= kMinPan && LuhnValid(std::string_view(digits).substr((*groups)[g], len))) {
        return true;
      }
    }
  }
  // Longer than any PAN: a PAN glued to other digits (an expiry date, an amount) must
  // not slip through, so every 13..19-digit window counts.
  return digits.size() > kMaxPan && AnyWindowValid(digits);
}

}  // namespace

bool LuhnValid(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool double_it = false;
  for (size_t i = digits.size(); i-- > 0;) {
    const char c = digits[i];
    if (!IsAsciiDigit(c)) return false;
    const int d = c - '0';
    sum += double_it ? Doubled(d) : d;
    double_it = !double_it;
  }
  return sum % 10 == 0;
}

bool ContainsCardNumber(std::string_view text) {
  // Fast path, the common case in a sale: ASCII text with fewer than 13 digits in all
  // cannot hold a PAN, whatever its separators.
  size_t ascii_digits = 0;
  bool non_ascii = false;
  for (char c : text) {
    ascii_digits += IsAsciiDigit(c) ? 1 : 0;
    non_ascii |= static_cast<unsigned char>(c) >= 0x80;
  }
  if (!non_ascii && ascii_digits < kMinPan) return false;

  std::string digits;          // the current run, normalised to ASCII
  std::vector<size_t> groups;  // offsets in `digits` where each group starts
  int pending_separators = 0;  // separators seen since the run's last digit
  auto close_run = [&]() {
    const bool found = digits.size() >= kMinPan && RunContainsCard(digits, &groups);
    digits.clear();
    groups.clear();
    pending_separators = 0;
    return found;
  };
  size_t i = 0;
  while (i < text.size()) {
    const char32_t cp = NextCodePoint(text, &i);
    const int value = DigitValue(cp);
    if (value >= 0) {
      if (digits.empty() || pending_separators > 0) groups.push_back(digits.size());
      digits.push_back(static_cast<char>('0' + value));
      pending_separators = 0;
    } else if (!digits.empty() && IsSeparator(cp) && pending_separators < kMaxSeparators) {
      ++pending_separators;
    } else if (!digits.empty()) {
      if (close_run()) return true;
    }
  }
  return close_run();
}

namespace {

Status CardNumberForbidden(std::string_view field_path) {
  std::string name(field_path);
  if (const size_t dot = name.rfind('.'); dot != std::string::npos) name.erase(0, dot + 1);
  if (name.empty()) name = "value";
  return Status(ErrorCode::kCardNumberForbidden,
                name + " looks like a full card number; send the processor's token and last4",
                std::string(field_path));
}

}  // namespace

Status CheckNoCardNumber(std::string_view text, std::string_view field_path) {
  if (!ContainsCardNumber(text)) return Status::Ok();
  return CardNumberForbidden(field_path);
}

Status CheckNoCardNumberInAmount(int64_t minor_units_value, int minor_units,
                                 std::string_view field_path) {
  int64_t scale = 1;
  for (int i = 0; i < minor_units; ++i) scale *= 10;
  if (minor_units_value < 0) minor_units_value = -minor_units_value;
  if (ContainsCardNumber(std::to_string(minor_units_value / scale)) ||
      ContainsCardNumber(std::to_string(minor_units_value))) {
    return CardNumberForbidden(field_path);
  }
  return Status::Ok();
}

}  // namespace machub::core
