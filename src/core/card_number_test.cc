#include "core/card_number.h"

#include <gtest/gtest.h>

namespace machub::core {
namespace {

TEST(Luhn, KnownNumbers) {
  EXPECT_TRUE(LuhnValid("4111111111111111"));  // Visa test number
  EXPECT_TRUE(LuhnValid("378282246310005"));   // Amex, 15 digits
  EXPECT_TRUE(LuhnValid("6011111111111117"));  // Discover
  EXPECT_TRUE(LuhnValid("4222222222222"));     // Visa, 13 digits
  EXPECT_TRUE(LuhnValid("79927398713"));       // the textbook example
  EXPECT_FALSE(LuhnValid("4111111111111112"));
  EXPECT_FALSE(LuhnValid("79927398710"));
  EXPECT_FALSE(LuhnValid(""));
  EXPECT_FALSE(LuhnValid("4111 1111 1111 1111"));  // digits only
  EXPECT_FALSE(LuhnValid("411111111111111a"));
}

TEST(ContainsCardNumber, PlainAndGrouped) {
  EXPECT_TRUE(ContainsCardNumber("4111111111111111"));
  EXPECT_TRUE(ContainsCardNumber("4111 1111 1111 1111"));
  EXPECT_TRUE(ContainsCardNumber("4111-1111-1111-1111"));
  EXPECT_TRUE(ContainsCardNumber("4111 1111-1111 1111"));  // mixed single separators
  EXPECT_TRUE(ContainsCardNumber("3782 822463 10005"));    // Amex grouping
  EXPECT_TRUE(ContainsCardNumber("4222222222222"));        // 13 digits
  EXPECT_TRUE(ContainsCardNumber("4111111111111111110"));  // 19 digits, Luhn-valid
  ASSERT_TRUE(LuhnValid("4111111111111111110"));
}

TEST(ContainsCardNumber, EmbeddedInText) {
  EXPECT_TRUE(ContainsCardNumber("tok_4111111111111111"));
  EXPECT_TRUE(ContainsCardNumber("tok_4111 1111 1111 1111"));
  EXPECT_TRUE(ContainsCardNumber("card:4111-1111-1111-1111;exp=12/25"));
  EXPECT_TRUE(ContainsCardNumber("abc 12 4111111111111111 xyz"));
  EXPECT_TRUE(ContainsCardNumber("4111111111111111=2512101"));  // track-2 style
  // Joined by a single separator to a neighbouring number: found by whole groups.
  EXPECT_TRUE(ContainsCardNumber("qty 2 4111111111111111"));
  EXPECT_TRUE(ContainsCardNumber("4111 1111 1111 1111-12"));
  EXPECT_TRUE(ContainsCardNumber("1 2 3 4111 1111 1111 1111"));
}

TEST(ContainsCardNumber, NotCardNumbers) {
  EXPECT_FALSE(ContainsCardNumber(""));
  EXPECT_FALSE(ContainsCardNumber("tok_abc123"));
  EXPECT_FALSE(ContainsCardNumber("4242"));
  EXPECT_FALSE(ContainsCardNumber("411111111117"));  // 12 digits (Luhn-valid)
  ASSERT_TRUE(LuhnValid("411111111117"));
  EXPECT_FALSE(ContainsCardNumber("4111111111111112"));  // 16 digits failing Luhn
  EXPECT_FALSE(ContainsCardNumber("tok_4111111111111112"));
  // Two separators in a row end the run: 8 + 8 digits, neither long enough.
  EXPECT_FALSE(ContainsCardNumber("41111111  11111111"));
  EXPECT_FALSE(ContainsCardNumber("4111 1111 -1111 1111"));
  // Other separators end the run too.
  EXPECT_FALSE(ContainsCardNumber("4111.1111.1111.1111"));
  EXPECT_FALSE(ContainsCardNumber("4111/1111/1111/1111"));
  // A separator at the start or end is not part of the run.
  EXPECT_FALSE(ContainsCardNumber("-411111111111 "));
  // A Luhn-failing 16 digits next to another number: no whole-group sequence passes.
  EXPECT_FALSE(ContainsCardNumber("12 4111111111111112"));
  // A Luhn-failing 16-digit token is judged as a whole even though some of its
  // 13..15-digit windows pass Luhn.
  EXPECT_FALSE(ContainsCardNumber("4111111111111112"));
}

TEST(ContainsCardNumber, RunsLongerThanAPan) {
  // 20 digits with no Luhn-valid window of 13..19 digits: accepted.
  EXPECT_FALSE(ContainsCardNumber("11111111111111111111"));
  EXPECT_FALSE(ContainsCardNumber("40874138443622436890"));
  EXPECT_FALSE(ContainsCardNumber("1111 1111 1111 1111 1111"));
  // A PAN glued to an expiry date (20 digits): caught through its 16-digit window.
  EXPECT_TRUE(ContainsCardNumber("41111111111111111225"));
  EXPECT_TRUE(ContainsCardNumber("ref 99994111111111111111 x"));
  // Documented consequence: most long numeric runs have some Luhn-valid window.
  EXPECT_TRUE(ContainsCardNumber("12345678901234567890"));
}

// The O(n) window search against the obvious quadratic one, on random long runs.
TEST(ContainsCardNumber, LongRunsMatchBruteForce) {
  uint32_t seed = 12345;
  auto next_digit = [&seed] {
    seed = seed * 1103515245u + 12345u;
    return static_cast<char>('0' + (seed >> 16) % 10);
  };
  int flagged = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const size_t n = 20 + static_cast<size_t>(trial % 15);
    std::string digits;
    for (size_t i = 0; i < n; ++i) digits.push_back(next_digit());
    bool expected = false;
    for (size_t len = 13; len <= 19 && !expected; ++len) {
      for (size_t s = 0; s + len <= n && !expected; ++s) {
        expected = LuhnValid(std::string_view(digits).substr(s, len));
      }
    }
    EXPECT_EQ(ContainsCardNumber(digits), expected) << digits;
    flagged += expected ? 1 : 0;
  }
  EXPECT_GT(flagged, 0);
  EXPECT_LT(flagged, 2000);
}

}  // namespace
}  // namespace machub::core
