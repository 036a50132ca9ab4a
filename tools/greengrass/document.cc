// Documents: YAML/JSON loading (YAML 1.1 scalar rules, as the nucleus reads recipes),
// JSON pointer helpers shared by the checks and the nucleus model, findings.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>

#include "greengrass/greengrass_check.h"

#if MACHUB_HAVE_YAML_CPP
#include <yaml-cpp/yaml.h>
#endif

#include "core/strings.h"
#include "greengrass/internal.h"

namespace machub::app::greengrass {

using internal::Child;
using nlohmann::json;

namespace internal {

bool IsStepName(std::string_view key) {
  return std::any_of(std::begin(kStepNames), std::end(kStepNames),
                     [&](const char* s) { return key == s; });
}

// RFC 6901 escaping of one reference token.
std::string EscapeToken(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Child(const std::string& pointer, std::string_view key) {
  return pointer + "/" + EscapeToken(key);
}
std::string Child(const std::string& pointer, size_t index) {
  return pointer + "/" + std::to_string(index);
}

std::string TypeName(const json& v) {
  if (v.is_string()) return "a string";
  if (v.is_number()) return "a number";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

// Resolves a JSON pointer; null when it is malformed or points nowhere.
const json* Resolve(const json& doc, const std::string& pointer) {
  try {
    json::json_pointer ptr(pointer);
    if (!doc.contains(ptr)) return nullptr;
    return &doc.at(ptr);
  } catch (const json::exception&) {
    return nullptr;
  }
}

bool IsJsonPointer(const std::string& s) { return s.empty() || s[0] == '/'; }

}  // namespace internal

namespace {

// --- YAML --------------------------------------------------------------------------------

#if MACHUB_HAVE_YAML_CPP
// YAML 1.1 plain-scalar resolution, as the nucleus' parser (SnakeYAML via Jackson) does.
json ResolvePlainScalar(const std::string& s) {
  static const std::regex kNull("^(~|null|Null|NULL|)$");
  static const std::regex kBool(
      "^(yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|"
      "on|On|ON|off|Off|OFF)$");
  static const std::regex kInt("^[-+]?(0|[1-9][0-9_]*)$");
  static const std::regex kFloat(
      "^[-+]?([0-9][0-9_]*)?\\.[0-9_]*([eE][-+]?[0-9]+)?$|^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$");
  if (std::regex_match(s, kNull)) return nullptr;
  if (std::regex_match(s, kBool)) {
    char c = s[0];
    return c == 'y' || c == 'Y' || c == 't' || c == 'T' || s == "on" || s == "On" || s == "ON";
  }
  std::string digits;
  for (char c : s) {
    if (c != '_') digits += c;
  }
  if (std::regex_match(s, kInt)) {
    int64_t v = 0;
    const char* begin = digits.data() + (digits[0] == '+' ? 1 : 0);
    auto [end, ec] = std::from_chars(begin, digits.data() + digits.size(), v);
    if (ec == std::errc() && end == digits.data() + digits.size()) return v;
    return s;  // out of range: leave as text
  }
  if (s != "." && std::regex_match(s, kFloat)) {
    return std::strtod(digits.c_str(), nullptr);
  }
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf") return HUGE_VAL;
  if (s == "-.inf" || s == "-.Inf" || s == "-.INF") return -HUGE_VAL;
  return s;
}

Result<json> YamlToJson(const YAML::Node& node, const std::string& pointer,
                        std::set<std::string>& plain) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      // Tag "!" marks a quoted or block scalar: always a string. "?" is a plain scalar.
      if (node.Tag() == "?") {
        plain.insert(pointer);
        return ResolvePlainScalar(node.Scalar());
      }
      return json(node.Scalar());
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      size_t i = 0;
      for (const YAML::Node& item : node) {
        ASSIGN_OR_RETURN(json v, YamlToJson(item, Child(pointer, i++), plain));
        arr.push_back(std::move(v));
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return Status(ErrorCode::kInvalidArgument, "line " +
                                                         std::to_string(kv.first.Mark().line + 1) +
                                                         ": a mapping key must be a scalar");
        }
        const std::string key = kv.first.Scalar();
        if (obj.contains(key)) {
          return Status(ErrorCode::kInvalidArgument,
                        "line " + std::to_string(kv.first.Mark().line + 1) + ": duplicate key \"" +
                            key + "\" in " + (pointer.empty() ? "/" : pointer));
        }
        ASSIGN_OR_RETURN(json v, YamlToJson(kv.second, Child(pointer, key), plain));
        obj[key] = std::move(v);
      }
      return obj;
    }
  }
  return json(nullptr);
}
#endif

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(ErrorCode::kIoError, path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status(ErrorCode::kIoError, path + ": read error");
  return ss.str();
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

bool YamlSupported() { return MACHUB_HAVE_YAML_CPP != 0; }

Result<Document> ParseDocument(std::string_view text, bool yaml, std::string path) {
  Document doc;
  doc.path = std::move(path);
  doc.yaml = yaml;
  std::string prefix = doc.path.empty() ? "" : doc.path + ": ";
  if (yaml) {
#if MACHUB_HAVE_YAML_CPP
    try {
      YAML::Node node = YAML::Load(std::string(text));
      auto converted = YamlToJson(node, "", doc.plain_scalars);
      if (!converted.ok()) {
        return Status(ErrorCode::kInvalidArgument, prefix + converted.status().message());
      }
      doc.root = std::move(converted).value();
    } catch (const YAML::Exception& e) {
      return Status(ErrorCode::kInvalidArgument, prefix + "YAML: " + e.what());
    }
#else
    return Status(ErrorCode::kInvalidArgument,
                  prefix +
                      "this machub was built without YAML support (libyaml-cpp-dev); use "
                      "the JSON form of the recipe");
#endif
  } else {
    try {
      doc.root = json::parse(text);
    } catch (const json::exception& e) {
      return Status(ErrorCode::kInvalidArgument, prefix + "JSON: " + e.what());
    }
  }
  return doc;
}

Result<Document> LoadDocument(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::string lower = core::AsciiLower(path);
  bool yaml = EndsWith(lower, ".yaml") || EndsWith(lower, ".yml");
  return ParseDocument(text, yaml, path);
}

std::string Finding::Format(std::string_view file) const {
  std::string out(file);
  out += severity == Severity::kError ? ": error: " : ": warning: ";
  if (!where.empty()) out += where + ": ";
  out += message;
  return out;
}

}  // namespace machub::app::greengrass
