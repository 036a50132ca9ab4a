#include "core/time_format.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>

namespace machub::core {
namespace {

int64_t Parse(std::string_view text) {
  Result<int64_t> r = ParseRfc3339(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? *r : -1;
}

// Expected values computed independently with Python's datetime.
TEST(ParseRfc3339, Basic) {
  EXPECT_EQ(Parse("2026-11-27T10:15:00Z"), 1795774500000);
  EXPECT_EQ(Parse("2026-11-27t10:15:00z"), 1795774500000);
  EXPECT_EQ(Parse("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(Parse("1969-12-31T23:59:59Z"), -1000);
  EXPECT_EQ(Parse("0001-01-01T00:00:00Z"), -62135596800000);
  EXPECT_EQ(Parse("9999-12-31T23:59:59.999Z"), 253402300799999);
}

TEST(ParseRfc3339, FractionsTruncateToMillis) {
  EXPECT_EQ(Parse("2026-11-27T10:15:00.1Z"), 1795774500100);
  EXPECT_EQ(Parse("2026-11-27T10:15:00.12Z"), 1795774500120);
  EXPECT_EQ(Parse("2026-11-27T10:15:00.123Z"), 1795774500123);
  EXPECT_EQ(Parse("2026-11-27T10:15:00.1239Z"), 1795774500123);
  EXPECT_EQ(Parse("2026-11-27T10:15:00.999999999Z"), 1795774500999);
  EXPECT_EQ(Parse("1969-12-31T23:59:59.5Z"), -500);
}

TEST(ParseRfc3339, Offsets) {
  EXPECT_EQ(Parse("2026-11-27T12:15:00+02:00"), 1795774500000);
  EXPECT_EQ(Parse("2026-11-27T05:15:00-05:00"), 1795774500000);
  EXPECT_EQ(Parse("2026-11-27T15:45:00+05:30"), 1795774500000);
  EXPECT_EQ(Parse("2026-11-27T10:15:00+00:00"), 1795774500000);
  EXPECT_EQ(Parse("2026-11-27T10:15:00-00:00"), 1795774500000);
  // Crossing a day and a year boundary.
  EXPECT_EQ(Parse("2027-01-01T01:00:00+02:00"), Parse("2026-12-31T23:00:00Z"));
  EXPECT_EQ(Parse("2026-11-27T10:15:00.250+01:00"), 1795774500000 - 3600000 + 250);
}

TEST(ParseRfc3339, LeapYears) {
  EXPECT_EQ(Parse("2024-02-29T23:59:59Z"), 1709251199000);
  EXPECT_EQ(Parse("2000-02-29T00:00:00Z"), 951782400000);
  EXPECT_FALSE(ParseRfc3339("2023-02-29T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("1900-02-29T00:00:00Z").ok());  // century, not leap
  EXPECT_FALSE(ParseRfc3339("2100-02-29T00:00:00Z").ok());
  EXPECT_TRUE(ParseRfc3339("2400-02-29T00:00:00Z").ok());
}

TEST(ParseRfc3339, InvalidRejected) {
  for (std::string_view bad : {
           "",
           "2026-11-27",
           "2026-11-27T10:15Z",
           "2026-11-27T10:15:00",        // no zone
           "2026-11-27 10:15:00Z",       // space separator
           "2026-11-27T10:15:00+0200",   // offset without colon
           "2026-11-27T10:15:00+02",     //
           "2026-11-27T10:15:00+24:00",  // offset hour
           "2026-11-27T10:15:00+02:60",  // offset minute
           "2026-11-27T10:15:00.Z",      // empty fraction
           "2026-11-27T10:15:00ZZ",      // trailing
           "2026-11-27T10:15:00Z ",      //
           " 2026-11-27T10:15:00Z",      //
           "2026-13-01T00:00:00Z",       // month
           "2026-00-01T00:00:00Z",       //
           "2026-04-31T00:00:00Z",       // April has 30 days
           "2026-01-32T00:00:00Z",       //
           "2026-01-00T00:00:00Z",       //
           "2026-01-01T24:00:00Z",       // hour
           "2026-01-01T23:60:00Z",       // minute
           "2026-06-30T23:59:60Z",       // leap second: refused by design
           "26-11-27T10:15:00Z",         //
           "+2026-11-27T10:15:00Z",      //
           "2026-1-27T10:15:00Z",        //
           "2026-11-27T10:15:00.123",    //
           "2026/11/27T10:15:00Z",       //
           "１９７０-01-01T00:00:00Z",   // full-width digits
       }) {
    Result<int64_t> r = ParseRfc3339(bad);
    EXPECT_FALSE(r.ok()) << "accepted: " << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), ErrorCode::kInvalidField);
    }
  }
}

TEST(FormatRfc3339, Basic) {
  EXPECT_EQ(FormatRfc3339(1795774500000), "2026-11-27T10:15:00.000Z");
  EXPECT_EQ(FormatRfc3339(1795774500123), "2026-11-27T10:15:00.123Z");
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339(-500), "1969-12-31T23:59:59.500Z");
  EXPECT_EQ(FormatRfc3339(1709251199000), "2024-02-29T23:59:59.000Z");
  EXPECT_EQ(FormatRfc3339(253402300799999), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339(-62135596800000), "0001-01-01T00:00:00.000Z");
  // Out of RFC 3339's range: still a deterministic string, no crash.
  EXPECT_FALSE(FormatRfc3339(INT64_MAX).empty());
  EXPECT_FALSE(FormatRfc3339(INT64_MIN).empty());
}

TEST(FormatRfc3339, RoundTripsEveryDayOfSomeYears) {
  // Every day of a leap year, a common year and a century year, at an odd time of day.
  for (int64_t day = Parse("1999-12-31T00:00:00Z") / 86400000;
       day <= Parse("2001-01-01T00:00:00Z") / 86400000; ++day) {
    const int64_t ms = day * 86400000 + 12345678;
    const std::string text = FormatRfc3339(ms);
    EXPECT_EQ(Parse(text), ms) << text;
  }
  for (int64_t ms : {int64_t{-62135596800000}, int64_t{-1}, int64_t{951782400000},
                     int64_t{4107542400000}, int64_t{253402300799999}}) {
    EXPECT_EQ(Parse(FormatRfc3339(ms)), ms);
  }
}

TEST(TimeOfDay, ParsesHoursAndMinutes) {
  EXPECT_EQ(*ParseTimeOfDay("00:00"), 0);
  EXPECT_EQ(*ParseTimeOfDay("22:30"), 22 * 60 + 30);
  EXPECT_EQ(*ParseTimeOfDay("23:59"), 23 * 60 + 59);
  for (const char* bad :
       {"24:00", "12:60", "9:00", "09:0", "0900", "09-00", "", "ab:cd", "09:00 ", "+9:00"}) {
    EXPECT_FALSE(ParseTimeOfDay(bad).ok()) << bad;
  }
}

// The time zone comes from TZ: set it for the case, put the old one back after.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    const char* old = getenv("TZ");
    if (old != nullptr) old_ = old;
    had_ = old != nullptr;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTz() {
    if (had_) {
      setenv("TZ", old_.c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::string old_;
  bool had_ = false;
};

TEST(TimeOfDay, LastLocalTimeOfDayInUtcAndInAZoneWithDaylightSaving) {
  {
    ScopedTz utc("UTC");
    const int64_t now = *ParseRfc3339("2026-12-06T15:00:00Z");
    EXPECT_EQ(FormatRfc3339(LastLocalTimeOfDay(now, 22 * 60)), "2026-12-05T22:00:00.000Z");
    EXPECT_EQ(FormatRfc3339(LastLocalTimeOfDay(now, 15 * 60)), "2026-12-06T15:00:00.000Z");
    EXPECT_EQ(FormatRfc3339(LastLocalTimeOfDay(now, 9 * 60)), "2026-12-06T09:00:00.000Z");
  }
  {
    // New York: EST (UTC-5) in December, EDT (UTC-4) in July.
    ScopedTz ny("America/New_York");
    EXPECT_EQ(FormatRfc3339(LastLocalTimeOfDay(*ParseRfc3339("2026-12-06T15:00:00Z"), 22 * 60)),
              "2026-12-06T03:00:00.000Z");
    EXPECT_EQ(FormatRfc3339(LastLocalTimeOfDay(*ParseRfc3339("2026-07-06T15:00:00Z"), 22 * 60)),
              "2026-07-06T02:00:00.000Z");
    // The Sunday clocks go forward (2026-03-08): 22:00 the day before was still EST.
    EXPECT_EQ(FormatRfc3339(LastLocalTimeOfDay(*ParseRfc3339("2026-03-08T12:00:00Z"), 22 * 60)),
              "2026-03-08T03:00:00.000Z");
  }
}

}  // namespace
}  // namespace machub::core
