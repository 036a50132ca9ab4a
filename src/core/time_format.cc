#include "core/time_format.h"

#include <cstdio>
#include <ctime>

namespace machub::core {
namespace {

constexpr int64_t kMsPerDay = 86'400'000;

// Howard Hinnant's days_from_civil / civil_from_days: exact proleptic Gregorian
// arithmetic with no dependence on the C library's time zone or locale state (timegm is
// not standard, and gmtime_r is slower and limited by time_t on 32-bit targets).
constexpr int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t year;
  int month;
  int day;
};

constexpr Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

static_assert(DaysFromCivil(1970, 1, 1) == 0);
static_assert(DaysFromCivil(2000, 3, 1) == 11017);
static_assert(CivilFromDays(11017).year == 2000 && CivilFromDays(11017).month == 3);

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `n` ASCII digits at text[*pos].
bool Digits(std::string_view text, size_t* pos, size_t n, int* out) {
  if (*pos + n > text.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view text, size_t* pos, char c) {
  if (*pos >= text.size() || text[*pos] != c) return false;
  ++*pos;
  return true;
}

Status Invalid() { return Status(ErrorCode::kInvalidField, "value is not an RFC 3339 timestamp"); }

void Put2(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

Result<int64_t> ParseRfc3339(std::string_view text) {
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!Digits(text, &pos, 4, &year) || !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &month) ||
      !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &day)) {
    return Invalid();
  }
  if (pos >= text.size() || (text[pos] != 'T' && text[pos] != 't')) return Invalid();
  ++pos;
  if (!Digits(text, &pos, 2, &hour) || !Expect(text, &pos, ':') ||
      !Digits(text, &pos, 2, &minute) || !Expect(text, &pos, ':') ||
      !Digits(text, &pos, 2, &second)) {
    return Invalid();
  }
  int64_t millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const size_t begin = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      // Digits beyond the third are truncated (not rounded): a timestamp never moves into
      // the next millisecond, second or day because of its precision.
      if (pos - begin < 3) millis = millis * 10 + (text[pos] - '0');
      ++pos;
    }
    const size_t n = pos - begin;
    if (n == 0) return Invalid();
    for (size_t k = n; k < 3; ++k) millis *= 10;
  }
  int offset_minutes = 0;
  if (pos >= text.size()) return Invalid();
  const char zone = text[pos++];
  if (zone == 'Z' || zone == 'z') {
    // UTC
  } else if (zone == '+' || zone == '-') {
    int oh = 0, om = 0;
    if (!Digits(text, &pos, 2, &oh) || !Expect(text, &pos, ':') || !Digits(text, &pos, 2, &om)) {
      return Invalid();
    }
    if (oh > 23 || om > 59) return Invalid();
    offset_minutes = (oh * 60 + om) * (zone == '-' ? -1 : 1);
  } else {
    return Invalid();
  }
  if (pos != text.size()) return Invalid();

  // Leap seconds (:60) are refused: the hub's clocks are POSIX clocks, which never show
  // them, and accepting one would make two different texts map to the same instant.
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 59) {
    return Invalid();
  }
  const int64_t days = DaysFromCivil(year, month, day);
  const int64_t seconds =
      days * 86400 + hour * 3600 + minute * 60 + second - static_cast<int64_t>(offset_minutes) * 60;
  return seconds * 1000 + millis;
}

std::string FormatRfc3339(int64_t ms) {
  // Floor division so that instants before 1970 land on the right day.
  int64_t days = ms / kMsPerDay;
  int64_t rem = ms % kMsPerDay;
  if (rem < 0) {
    rem += kMsPerDay;
    --days;
  }
  const Civil c = CivilFromDays(days);
  const int hour = static_cast<int>(rem / 3'600'000);
  const int minute = static_cast<int>(rem / 60'000 % 60);
  const int second = static_cast<int>(rem / 1000 % 60);
  const int milli = static_cast<int>(rem % 1000);
  if (c.year < 0 || c.year > 9999) {
    // Outside RFC 3339's range; still deterministic, for logs of absurd inputs.
    char buf[64];
    const int n =
        std::snprintf(buf, sizeof(buf), "%lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
                      static_cast<long long>(c.year), c.month, c.day, hour, minute, second, milli);
    return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
  }
  char buf[25] = "0000-00-00T00:00:00.000Z";
  const int y = static_cast<int>(c.year);
  Put2(buf, y / 100);
  Put2(buf + 2, y % 100);
  Put2(buf + 5, c.month);
  Put2(buf + 8, c.day);
  Put2(buf + 11, hour);
  Put2(buf + 14, minute);
  Put2(buf + 17, second);
  buf[20] = static_cast<char>('0' + milli / 100);
  Put2(buf + 21, milli % 100);
  return std::string(buf, 24);
}

Result<int> ParseTimeOfDay(std::string_view text) {
  auto digit = [&](size_t i) { return text[i] >= '0' && text[i] <= '9'; };
  if (text.size() != 5 || text[2] != ':' || !digit(0) || !digit(1) || !digit(3) || !digit(4)) {
    return Status(ErrorCode::kInvalidArgument, "a time of day is \"HH:MM\" (24-hour clock)");
  }
  const int hours = (text[0] - '0') * 10 + (text[1] - '0');
  const int minutes = (text[3] - '0') * 10 + (text[4] - '0');
  if (hours > 23 || minutes > 59) {
    return Status(ErrorCode::kInvalidArgument, "a time of day runs from 00:00 to 23:59");
  }
  return hours * 60 + minutes;
}

int64_t LastLocalTimeOfDay(int64_t now_ms, int minute_of_day) {
  const time_t now_s = static_cast<time_t>(now_ms / 1000);
  struct tm local {};
  localtime_r(&now_s, &local);
  for (int days_back = 0; days_back < 3; ++days_back) {
    struct tm at = local;
    at.tm_mday -= days_back;
    at.tm_hour = minute_of_day / 60;
    at.tm_min = minute_of_day % 60;
    at.tm_sec = 0;
    at.tm_isdst = -1;
    const time_t t = mktime(&at);
    if (t != static_cast<time_t>(-1) && static_cast<int64_t>(t) * 1000 <= now_ms) {
      return static_cast<int64_t>(t) * 1000;
    }
  }
  return now_ms - kMsPerDay;  // not reached for real time zones
}

}  // namespace machub::core
