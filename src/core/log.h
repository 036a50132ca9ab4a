#pragma once
// JSON-lines logging to stdout, one object per line, flushed per line (Greengrass copies
// stdout into the component log; a block-buffered pipe would hide lines for minutes).
//   {"ts":"2026-11-27T10:15:00.123Z","level":"info","event":"listening","port":8080}
// Never pass secrets (tokens, keys) or card data as fields.

#include <nlohmann/json.hpp>
#include <string_view>

namespace machub::core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Lines below the level are dropped. Default: kInfo. Thread-safe.
void SetLogLevel(LogLevel level);
// "debug" | "info" | "warn" ("warning" too) | "error"; false when unknown.
bool ParseLogLevel(std::string_view text, LogLevel* level);

// `fields` must be a JSON object (or null). Thread-safe; lines never interleave.
// Members come after ts, level and event, in the object's order; a member named "ts",
// "level" or "event" is written as "field_ts" etc. so a line never repeats a key. A
// non-object is written as "fields". Invalid UTF-8 is replaced by U+FFFD. Never throws.
void Log(LogLevel level, std::string_view event, const nlohmann::json& fields = nullptr);
inline void LogInfo(std::string_view event, const nlohmann::json& fields = nullptr) {
  Log(LogLevel::kInfo, event, fields);
}
inline void LogWarn(std::string_view event, const nlohmann::json& fields = nullptr) {
  Log(LogLevel::kWarn, event, fields);
}
inline void LogError(std::string_view event, const nlohmann::json& fields = nullptr) {
  Log(LogLevel::kError, event, fields);
}

}  // namespace machub::core
