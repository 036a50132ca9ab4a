#pragma once
// Helpers shared by the files of the Greengrass checker (document.cc, script_check.cc,
// recipe_check.cc, update_check.cc, nucleus.cc). Not part of the greengrass_check.h
// contract: only these files include it.
//
// Thread-safety: every function is reentrant; PlaceholderRegex returns a shared immutable
// object (initialised once, thread-safe).

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "greengrass/greengrass_check.h"

namespace machub::app::greengrass::internal {

inline constexpr std::string_view kRecipeFormatVersion = "2020-01-25";
inline constexpr std::string_view kTokenExchangeService = "aws.greengrass.TokenExchangeService";
inline constexpr const char* kStepNames[] = {"Setenv",   "Install", "Run",      "Startup",
                                             "Shutdown", "Recover", "Bootstrap"};
// Keys that belong inside a step; at lifecycle level the nucleus ignores them.
inline constexpr const char* kStepOnlyKeys[] = {"RequiresPrivilege", "Skipif", "Timeout", "Script"};

// --- JSON pointers and values (document.cc) --------------------------------------------

// True for a lifecycle step name (Install, Run, ...).
bool IsStepName(std::string_view key);
// RFC 6901 escaping of one reference token.
std::string EscapeToken(std::string_view token);
// pointer + "/" + escaped key, or + "/" + index.
std::string Child(const std::string& pointer, std::string_view key);
std::string Child(const std::string& pointer, size_t index);
// "a string", "a number", ... for messages.
std::string TypeName(const nlohmann::json& v);
// Resolves a JSON pointer; null when it is malformed or points nowhere. The result points
// into doc.
const nlohmann::json* Resolve(const nlohmann::json& doc, const std::string& pointer);
// "" or starting with '/'.
bool IsJsonPointer(const std::string& s);

// Collects findings in document order.
class Findings {
 public:
  void Error(std::string where, std::string message) {
    out_.push_back({Severity::kError, std::move(where), std::move(message)});
  }
  void Warn(std::string where, std::string message) {
    out_.push_back({Severity::kWarning, std::move(where), std::move(message)});
  }
  std::vector<Finding> Take() { return std::move(out_); }

 private:
  std::vector<Finding> out_;
};

// --- Scripts (script_check.cc) ---------------------------------------------------------

// The nucleus' pattern for {namespace:key}.
const std::regex& PlaceholderRegex();
// First word of each simple command, quotes removed: what the shell runs.
std::vector<std::string> CommandWords(const std::string& script);

}  // namespace machub::app::greengrass::internal
