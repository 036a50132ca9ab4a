#include "core/card_number.h"

#include <string>
#include <vector>

namespace machub::core {
namespace {

constexpr size_t kMinPan = 13;
constexpr size_t kMaxPan = 19;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int Doubled(int d) { return d * 2 > 9 ? d * 2 - 9 : d * 2; }

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

}  // namespace

bool LuhnValid(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool double_it = false;
  for (size_t i = digits.size(); i-- > 0;) {
    const char c = digits[i];
    if (!IsDigit(c)) return false;
    const int d = c - '0';
    sum += double_it ? Doubled(d) : d;
    double_it = !double_it;
  }
  return sum % 10 == 0;
}

bool ContainsCardNumber(std::string_view text) {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (!IsDigit(text[i])) {
      ++i;
      continue;
    }
    // One run: digits, each pair optionally separated by a single space or dash (the ways
    // people and printers group a PAN: "4111 1111 1111 1111", "4111-1111-1111-1111").
    const size_t begin = i;
    size_t digit_count = 0;
    while (i < n) {
      if (IsDigit(text[i])) {
        ++digit_count;
        ++i;
      } else if ((text[i] == ' ' || text[i] == '-') && i + 1 < n && IsDigit(text[i + 1])) {
        ++i;
      } else {
        break;
      }
    }
    // Most runs in a sale are short ("c-17", "4242"): judged without allocating.
    if (digit_count < kMinPan) continue;

    std::string digits;
    digits.reserve(digit_count);
    std::vector<size_t> groups = {0};  // offsets in `digits` where each group starts
    for (size_t k = begin; k < i; ++k) {
      if (IsDigit(text[k])) {
        digits.push_back(text[k]);
      } else {
        groups.push_back(digits.size());
      }
    }
    groups.push_back(digits.size());  // sentinel: end of the last group
    // Whole groups in a row: the run itself, and a PAN that a separator joins to other
    // numbers ("qty 2 4111 1111 1111 1111"). Windows that cut through a group are not
    // tried: processors issue 16-digit tokens that deliberately fail Luhn, and more than
    // half of those have a Luhn-valid 13..15-digit window.
    for (size_t g = 0; g + 1 < groups.size(); ++g) {
      for (size_t h = g + 1; h < groups.size(); ++h) {
        const size_t len = groups[h] - groups[g];
        if (len > kMaxPan) break;
        if (len >= kMinPan && LuhnValid(std::string_view(digits).substr(groups[g], len))) {
          return true;
        }
      }
    }
    // Longer than any PAN: a PAN glued to other digits (an expiry date, an amount) must
    // not slip through, so every 13..19-digit window counts.
    if (digits.size() > kMaxPan && AnyWindowValid(digits)) return true;
  }
  return false;
}

}  // namespace machub::core
