#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "core/time_format.h"

namespace machub::core {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

std::mutex& LogMutex() {
  static std::mutex mu;
  return mu;
}

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// Invalid UTF-8 in a field (a header a client sent, a file name) must not make logging
// throw: replace it with U+FFFD instead.
std::string Dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  if (text == "debug") {
    *level = LogLevel::kDebug;
  } else if (text == "info") {
    *level = LogLevel::kInfo;
  } else if (text == "warn" || text == "warning") {
    *level = LogLevel::kWarn;
  } else if (text == "error") {
    *level = LogLevel::kError;
  } else {
    return false;
  }
  return true;
}

void Log(LogLevel level, std::string_view event, const nlohmann::json& fields) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  std::string line;
  try {
    line.reserve(128);
    line.append("{\"ts\":\"");
    line.append(FormatRfc3339(SystemClock().NowMs()));
    line.append("\",\"level\":\"");
    line.append(LevelName(level));
    line.append("\",\"event\":");
    line.append(Dump(nlohmann::json(std::string(event))));
    if (fields.is_object()) {
      for (const auto& [key, value] : fields.items()) {
        // A field named like a fixed member would make a line with duplicate keys, which
        // most JSON readers resolve silently by dropping one.
        const bool reserved = key == "ts" || key == "level" || key == "event";
        line.push_back(',');
        line.append(Dump(nlohmann::json(reserved ? "field_" + key : key)));
        line.push_back(':');
        line.append(Dump(value));
      }
    } else if (!fields.is_null()) {
      line.append(",\"fields\":");
      line.append(Dump(fields));
    }
    line.append("}\n");
  } catch (const std::exception&) {
    // Out of memory or a bug in a caller's JSON: logging must never throw into callers.
    return;
  }
  std::lock_guard<std::mutex> lock(LogMutex());
  // One fwrite per line under the mutex keeps lines whole across threads; the flush per
  // line is what makes them visible in the Greengrass log right away.
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

}  // namespace machub::core
