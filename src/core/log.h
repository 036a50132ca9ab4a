#pragma once
// JSON-lines logging to stdout, one object per line, flushed per line (Greengrass copies
// stdout into the component log; a block-buffered pipe would hide lines for minutes).
//   {"ts":"2026-11-27T10:15:00.123Z","level":"info","event":"listening","port":8080}
// Never pass secrets (tokens, keys) or card data as fields.

#include <string_view>

#include <nlohmann/json.hpp>

namespace machub::core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);
// "debug" | "info" | "warn" | "error"; false when unknown.
bool ParseLogLevel(std::string_view text, LogLevel* level);

// `fields` must be a JSON object (or null). Thread-safe; lines never interleave.
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
