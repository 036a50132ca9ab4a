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
  // Issue 13: up to four separators of any kind (space, . _ - / \\ ,) join a run, so
  // these, accepted before, are card numbers now.
  EXPECT_TRUE(ContainsCardNumber("41111111  11111111"));
  EXPECT_TRUE(ContainsCardNumber("4111 1111 -1111 1111"));
  EXPECT_TRUE(ContainsCardNumber("4111.1111.1111.1111"));
  EXPECT_TRUE(ContainsCardNumber("4111/1111/1111/1111"));
  // A colon or a letter ends the run.
  EXPECT_FALSE(ContainsCardNumber("4111:1111:1111:1111"));
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

// Issue 13: the separators and digit forms people and scanners produce.
TEST(ContainsCardNumber, OtherSeparators) {
  EXPECT_TRUE(ContainsCardNumber("4111.1111.1111.1111"));
  EXPECT_TRUE(ContainsCardNumber("4111_1111_1111_1111"));
  EXPECT_TRUE(ContainsCardNumber("4111  1111  1111  1111"));  // several spaces
  EXPECT_TRUE(ContainsCardNumber("4111 - 1111 - 1111 - 1111"));
  EXPECT_TRUE(ContainsCardNumber("4111/1111/1111/1111"));
  EXPECT_TRUE(ContainsCardNumber("4111,1111,1111,1111"));
  EXPECT_TRUE(ContainsCardNumber("4111._1111-_1111 1111"));
  EXPECT_TRUE(ContainsCardNumber("name 4111.1111.1111.1111 x"));
  EXPECT_TRUE(ContainsCardNumber("4111\u00a01111\u00a01111\u00a01111"));  // no-break spaces
  EXPECT_TRUE(ContainsCardNumber("4111\u20131111\u20131111\u20131111"));  // en dashes
  EXPECT_TRUE(ContainsCardNumber("4111\u30001111\u30001111\u30001111"));  // ideographic sp.
  // Five separators in a row end the run; a letter too.
  EXPECT_FALSE(ContainsCardNumber("4111     1111     1111     1111"));
  EXPECT_FALSE(ContainsCardNumber("4111x1111x1111x1111"));
  EXPECT_FALSE(ContainsCardNumber("4111.1111.1111.1112"));  // Luhn fails
}

TEST(ContainsCardNumber, UnicodeDigits) {
  // Fullwidth: U+FF14 U+FF11 ... (4111111111111111).
  std::string fullwidth;
  for (char c : std::string("4111111111111111")) {
    fullwidth += "\xEF\xBC";
    fullwidth += static_cast<char>(0x90 + (c - '0'));
  }
  EXPECT_TRUE(ContainsCardNumber(fullwidth));
  // Arabic-Indic U+0660..U+0669 (D9 A0..D9 A9), grouped with spaces.
  std::string arabic;
  const std::string pan = "4111 1111 1111 1111";
  for (char c : pan) {
    if (c == ' ') {
      arabic += ' ';
    } else {
      arabic += "\xD9";
      arabic += static_cast<char>(0xA0 + (c - '0'));
    }
  }
  EXPECT_TRUE(ContainsCardNumber(arabic));
  // Devanagari U+0966.. mixed with ASCII digits.
  EXPECT_TRUE(ContainsCardNumber("\u096a111111111111111"));
  // Mathematical bold digits (4-byte UTF-8): U+1D7CE is bold zero.
  std::string bold;
  for (char c : std::string("4222222222222")) {
    const char32_t cp = 0x1D7CE + static_cast<char32_t>(c - '0');
    bold += static_cast<char>(0xF0 | (cp >> 18));
    bold += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    bold += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    bold += static_cast<char>(0x80 | (cp & 0x3F));
  }
  EXPECT_TRUE(ContainsCardNumber(bold));
  // Not digits: superscripts, circled numbers, invalid UTF-8.
  EXPECT_FALSE(ContainsCardNumber("\u00b9\u00b2\u00b3 caf\u00e9"));
  EXPECT_FALSE(ContainsCardNumber(std::string("\xFF\xFE 4111 1111 1111")));
}

TEST(ContainsCardNumber, BarcodesAreNotCards) {
  // Luhn-valid AND a valid EAN-13: a scanned barcode in a sku.
  ASSERT_TRUE(LuhnValid("4039621723216"));
  EXPECT_FALSE(ContainsCardNumber("4039621723216"));
  EXPECT_FALSE(ContainsCardNumber("sku 4018375751607"));
  // The same digits grouped like a card, or a 16-digit PAN, are still cards.
  EXPECT_TRUE(ContainsCardNumber("4039 6217 2321 6"));
  EXPECT_TRUE(ContainsCardNumber("4111111111111111"));
  EXPECT_TRUE(ContainsCardNumber("4222222222222"));  // Luhn-valid, not GS1-valid
}

TEST(CheckNoCardNumber, FieldPathNotValue) {
  EXPECT_TRUE(CheckNoCardNumber("Coffee 2x", "lines[0].name").ok());
  const Status st = CheckNoCardNumber("4111.1111.1111.1111", "lines[3].name");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ErrorCode::kCardNumberForbidden);
  EXPECT_EQ(st.field(), "lines[3].name");
  EXPECT_EQ(st.ToString().find("1111"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("name"), std::string::npos) << st.message();
}

TEST(CheckNoCardNumberInAmount, MajorOrMinorUnits) {
  // 4222222222222 major units (13 digits): refused; 42222222222.22 as minor: refused.
  EXPECT_FALSE(CheckNoCardNumberInAmount(422222222222200, 2, "payments[0].amount").ok());
  EXPECT_FALSE(CheckNoCardNumberInAmount(4222222222222, 2, "payments[0].amount").ok());
  EXPECT_TRUE(CheckNoCardNumberInAmount(800, 2, "payments[0].amount").ok());
  EXPECT_TRUE(CheckNoCardNumberInAmount(4222222222223, 0, "payments[0].amount").ok());
}

}  // namespace
}  // namespace machub::core
