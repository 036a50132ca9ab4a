#include "core/log.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace machub::core {
namespace {

std::vector<nlohmann::json> Lines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST(Log, JsonLinesWithLevelFilter) {
  testing::internal::CaptureStdout();
  SetLogLevel(LogLevel::kInfo);
  LogInfo("listening", {{"port", 8080}, {"ts", "clash"}});
  Log(LogLevel::kDebug, "hidden");
  LogWarn("odd", 5);
  LogError("bad utf8", {{"v", std::string("\xff")}});
  SetLogLevel(LogLevel::kDebug);
  Log(LogLevel::kDebug, "shown");
  SetLogLevel(LogLevel::kInfo);
  const std::string out = testing::internal::GetCapturedStdout();

  const std::vector<nlohmann::json> lines = Lines(out);
  ASSERT_EQ(lines.size(), 4u) << out;
  EXPECT_EQ(out.rfind("{\"ts\":\"", 0), 0u);
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["event"], "listening");
  EXPECT_EQ(lines[0]["port"], 8080);
  EXPECT_EQ(lines[0]["field_ts"], "clash");
  EXPECT_EQ(lines[0]["ts"].get<std::string>().size(), 24u);
  EXPECT_EQ(lines[1]["level"], "warn");
  EXPECT_EQ(lines[1]["fields"], 5);
  EXPECT_EQ(lines[2]["level"], "error");
  EXPECT_EQ(lines[2]["v"], "\xEF\xBF\xBD");
  EXPECT_EQ(lines[3]["event"], "shown");
}

TEST(Log, ParseLevel) {
  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("debug", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("warning", &level));
  EXPECT_EQ(level, LogLevel::kWarn);
  EXPECT_TRUE(ParseLogLevel("error", &level));
  EXPECT_EQ(level, LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("INFO", &level));
  EXPECT_FALSE(ParseLogLevel("", &level));
  EXPECT_EQ(level, LogLevel::kError);
}

}  // namespace
}  // namespace machub::core
