#include "core/money.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "core/currency.h"

namespace machub::core {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

int64_t Parse(std::string_view text, int places, bool allow_negative = false) {
  Result<int64_t> r = ParseDecimal(text, places, allow_negative);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? *r : -999;
}

void ExpectRejected(std::string_view text, int places, bool allow_negative = false) {
  Result<int64_t> r = ParseDecimal(text, places, allow_negative);
  EXPECT_FALSE(r.ok()) << "accepted \"" << text << "\" with " << places << " places";
  if (!r.ok()) {
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidField) << text;
  }
}

TEST(ParseDecimal, EveryMinorUnitCount) {
  EXPECT_EQ(Parse("3.50", 2), 350);
  EXPECT_EQ(Parse("3.5", 2), 350);
  EXPECT_EQ(Parse("3", 2), 300);
  EXPECT_EQ(Parse("0.01", 2), 1);
  EXPECT_EQ(Parse("350", 0), 350);
  EXPECT_EQ(Parse("1.234", 3), 1234);
  EXPECT_EQ(Parse("1.2", 3), 1200);
  EXPECT_EQ(Parse("0.0001", 4), 1);
  EXPECT_EQ(Parse("12.3456", 4), 123456);
  EXPECT_EQ(Parse("0.082500", 6), 82500);
  EXPECT_EQ(Parse("0", 2), 0);
  EXPECT_EQ(Parse("0.00", 2), 0);
}

TEST(ParseDecimal, LeadingZerosAccepted) {
  EXPECT_EQ(Parse("007.5", 2), 750);
  EXPECT_EQ(Parse("000", 0), 0);
  EXPECT_EQ(Parse("00.10", 2), 10);
}

TEST(ParseDecimal, TooManyDecimals) {
  ExpectRejected("3.501", 2);
  ExpectRejected("3.500", 2);  // even zeros: more digits than the currency has
  ExpectRejected("1.5", 0);
  ExpectRejected("1.0", 0);
  ExpectRejected("0.0001", 3);
  ExpectRejected("0.00001", 4);
  int64_t out = 0;
  EXPECT_EQ(ParseDecimalTo("3.501", 2, false, &out), DecimalError::kTooManyPlaces);
}

TEST(ParseDecimal, SyntaxRejected) {
  for (std::string_view bad :
       {"",    "-",     ".",     "1.",   ".5",       "-.5",  "+1",    " 1",  "1 ",
        "1e3", "1E3",   "1.5e2", "0x10", "1,5",      "1..2", "1.2.3", "--1", "abc",
        "١",   "1_000", "\t1",   "NaN",  "Infinity", "-1.",  "1-"}) {
    ExpectRejected(bad, 2, /*allow_negative=*/true);
    int64_t out = 0;
    EXPECT_EQ(ParseDecimalTo(bad, 2, true, &out), DecimalError::kSyntax) << bad;
  }
}

TEST(ParseDecimal, Negative) {
  EXPECT_EQ(Parse("-0.5", 2, true), -50);
  EXPECT_EQ(Parse("-12", 0, true), -12);
  EXPECT_EQ(Parse("-0", 2, true), 0);
  EXPECT_EQ(Parse("-0.00", 2, true), 0);
  ExpectRejected("-0.5", 2);
  ExpectRejected("-0", 2);  // a sign is a sign, even on zero
  int64_t out = 0;
  EXPECT_EQ(ParseDecimalTo("-1", 2, false, &out), DecimalError::kNegative);
  // Syntax wins over sign.
  EXPECT_EQ(ParseDecimalTo("-x", 2, false, &out), DecimalError::kSyntax);
}

TEST(ParseDecimal, OverflowBoundaries) {
  EXPECT_EQ(Parse("9223372036854775807", 0), kMax);
  ExpectRejected("9223372036854775808", 0);
  EXPECT_EQ(Parse("-9223372036854775808", 0, true), kMin);
  ExpectRejected("-9223372036854775809", 0, true);
  EXPECT_EQ(Parse("92233720368547758.07", 2), kMax);
  ExpectRejected("92233720368547758.08", 2);
  EXPECT_EQ(Parse("-92233720368547758.08", 2, true), kMin);
  ExpectRejected("-92233720368547758.09", 2, true);
  // Scaling by the missing fractional zeros overflows too.
  ExpectRejected("92233720368547759", 2);
  ExpectRejected("99999999999999999999999999", 0);
  // Leading zeros do not count towards overflow.
  EXPECT_EQ(Parse("0000000000000000000000000001", 0), 1);
  int64_t out = 0;
  EXPECT_EQ(ParseDecimalTo("9223372036854775808", 0, false, &out), DecimalError::kOverflow);
}

TEST(ParseDecimal, PlacesOutOfRange) {
  EXPECT_EQ(ParseDecimal("1", -1).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ParseDecimal("1", 19).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Parse("1", 18), 1'000'000'000'000'000'000);
}

TEST(ParseAmount, UsesMinorUnits) {
  ASSERT_EQ(*ParseAmount("3.50", FindCurrency("USD")->minor_units), 350);
  ASSERT_EQ(*ParseAmount("350", FindCurrency("JPY")->minor_units), 350);
  ASSERT_FALSE(ParseAmount("3.5", FindCurrency("JPY")->minor_units).ok());
  ASSERT_EQ(*ParseAmount("1.234", FindCurrency("KWD")->minor_units), 1234);
  ASSERT_EQ(*ParseAmount("1.2345", FindCurrency("CLF")->minor_units), 12345);
  ASSERT_EQ(*ParseAmount("-1.25", 2, true), -125);
}

TEST(FormatAmount, AllMinorUnitCounts) {
  EXPECT_EQ(FormatAmount(350, 2), "3.50");
  EXPECT_EQ(FormatAmount(-5, 2), "-0.05");
  EXPECT_EQ(FormatAmount(7, 0), "7");
  EXPECT_EQ(FormatAmount(-7, 0), "-7");
  EXPECT_EQ(FormatAmount(0, 2), "0.00");
  EXPECT_EQ(FormatAmount(0, 0), "0");
  EXPECT_EQ(FormatAmount(1234, 3), "1.234");
  EXPECT_EQ(FormatAmount(5, 3), "0.005");
  EXPECT_EQ(FormatAmount(12345, 4), "1.2345");
  EXPECT_EQ(FormatAmount(1, 4), "0.0001");
  EXPECT_EQ(FormatAmount(100, 2), "1.00");
  EXPECT_EQ(FormatAmount(kMax, 2), "92233720368547758.07");
  EXPECT_EQ(FormatAmount(kMin, 2), "-92233720368547758.08");
  EXPECT_EQ(FormatAmount(kMin, 0), "-9223372036854775808");
  EXPECT_EQ(FormatDecimal(82500, 6), "0.082500");
}

TEST(FormatAmount, RoundTripsThroughParse) {
  for (int places : {0, 2, 3, 4}) {
    for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{99}, int64_t{100},
                      int64_t{123456789}, int64_t{-987654321}, kMax, kMin}) {
      const std::string text = FormatAmount(v, places);
      EXPECT_EQ(Parse(text, places, true), v) << text;
    }
  }
}

TEST(AppendDecimal, TrimmedForm) {
  auto trimmed = [](int64_t v, int places) {
    std::string out = "x";
    AppendDecimal(&out, v, places, true);
    return out;
  };
  EXPECT_EQ(trimmed(2000, 3), "x2");
  EXPECT_EQ(trimmed(2500, 3), "x2.5");
  EXPECT_EQ(trimmed(1, 3), "x0.001");
  EXPECT_EQ(trimmed(0, 6), "x0");
  EXPECT_EQ(trimmed(82500, 6), "x0.0825");
  EXPECT_EQ(trimmed(1000000, 6), "x1");
  EXPECT_EQ(trimmed(-1500, 3), "x-1.5");
  EXPECT_EQ(trimmed(7, 0), "x7");
}

TEST(DivRoundHalfUp, HalvesAwayFromZeroBothSigns) {
  EXPECT_EQ(*DivRoundHalfUp(5, 10), 1);    // 0.5 -> 1
  EXPECT_EQ(*DivRoundHalfUp(-5, 10), -1);  // -0.5 -> -1
  EXPECT_EQ(*DivRoundHalfUp(15, 10), 2);   // 1.5 -> 2
  EXPECT_EQ(*DivRoundHalfUp(25, 10), 3);   // 2.5 -> 3 (not banker's 2)
  EXPECT_EQ(*DivRoundHalfUp(-25, 10), -3);
  EXPECT_EQ(*DivRoundHalfUp(4, 10), 0);
  EXPECT_EQ(*DivRoundHalfUp(-4, 10), 0);
  EXPECT_EQ(*DivRoundHalfUp(6, 10), 1);
  EXPECT_EQ(*DivRoundHalfUp(-6, 10), -1);
  EXPECT_EQ(*DivRoundHalfUp(1, 3), 0);
  EXPECT_EQ(*DivRoundHalfUp(2, 3), 1);
  EXPECT_EQ(*DivRoundHalfUp(-2, 3), -1);
  EXPECT_EQ(*DivRoundHalfUp(0, 7), 0);
  EXPECT_EQ(*DivRoundHalfUp(100, 1), 100);
  // 7.00 x 0.0825 = 0.5775 -> 0.58: the API.md example line's tax.
  EXPECT_EQ(*DivRoundHalfUp(Int128{700} * 82500, 1'000'000), 58);
  // qty 0.5 x 1.25 = 0.625 -> 0.63
  EXPECT_EQ(*DivRoundHalfUp(Int128{500} * 125, 1000), 63);
}

TEST(DivRoundHalfUp, LimitsAndErrors) {
  EXPECT_EQ(*DivRoundHalfUp(Int128{kMax}, 1), kMax);
  EXPECT_EQ(*DivRoundHalfUp(Int128{kMin}, 1), kMin);
  EXPECT_FALSE(DivRoundHalfUp(Int128{kMax} + 1, 1).ok());
  EXPECT_FALSE(DivRoundHalfUp(Int128{kMin} - 1, 1).ok());
  // A quotient that only overflows after rounding.
  EXPECT_FALSE(DivRoundHalfUp(Int128{kMax} * 2 + 1, 2).ok());
  EXPECT_EQ(*DivRoundHalfUp(Int128{kMax} * 2, 2), kMax);
  EXPECT_EQ(DivRoundHalfUp(1, 0).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(DivRoundHalfUp(1, -1).status().code(), ErrorCode::kInvalidArgument);
}

TEST(Currency, Table) {
  for (std::string_view code :
       {"USD", "EUR", "GBP", "CAD", "AUD", "CHF", "CNY", "INR", "MXN", "BRL",
        "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "ZAR", "NZD", "SGD", "HKD"}) {
    ASSERT_NE(FindCurrency(code), nullptr) << code;
    EXPECT_EQ(FindCurrency(code)->minor_units, 2) << code;
    EXPECT_EQ(FindCurrency(code)->code, code);
  }
  for (std::string_view code : {"JPY", "KRW", "VND", "ISK", "CLP", "XOF", "XAF"}) {
    ASSERT_NE(FindCurrency(code), nullptr) << code;
    EXPECT_EQ(FindCurrency(code)->minor_units, 0) << code;
  }
  for (std::string_view code : {"KWD", "BHD", "OMR", "JOD", "TND", "LYD", "IQD"}) {
    ASSERT_NE(FindCurrency(code), nullptr) << code;
    EXPECT_EQ(FindCurrency(code)->minor_units, 3) << code;
  }
  for (std::string_view code : {"CLF", "UYW"}) {
    ASSERT_NE(FindCurrency(code), nullptr) << code;
    EXPECT_EQ(FindCurrency(code)->minor_units, 4) << code;
  }
  for (std::string_view code : {"usd", "US", "USDX", "", "XXX", "XAU", "ZZZ", "AAA"}) {
    EXPECT_EQ(FindCurrency(code), nullptr) << code;
  }
  EXPECT_NE(FindCurrency("AED"), nullptr);  // first in the table
  EXPECT_NE(FindCurrency("ZWL"), nullptr);  // last
}

}  // namespace
}  // namespace machub::core
