#include "app/greengrass_check.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <utility>

#if MACHUB_HAVE_YAML_CPP
#include <yaml-cpp/yaml.h>
#endif

#include "core/strings.h"

namespace machub::app::greengrass {
namespace {

using nlohmann::json;

constexpr std::string_view kRecipeFormatVersion = "2020-01-25";
constexpr std::string_view kTokenExchangeService = "aws.greengrass.TokenExchangeService";
const char* const kStepNames[] = {"Setenv",   "Install", "Run",      "Startup",
                                  "Shutdown", "Recover", "Bootstrap"};
// Keys that belong inside a step; at lifecycle level the nucleus ignores them.
const char* const kStepOnlyKeys[] = {"RequiresPrivilege", "Skipif", "Timeout", "Script"};

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

// --- Findings ------------------------------------------------------------------------------

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

// --- Scripts -----------------------------------------------------------------------------

const std::regex& PlaceholderRegex() {
  // The nucleus' pattern for {namespace:key}.
  static const std::regex kRe("\\{([.\\w]+):([^:}]+)\\}");
  return kRe;
}

// The script with Greengrass placeholders replaced by a neutral word, quoted text blanked
// (quotes kept), comments removed. Sets *ansi_c when $'...' occurs outside quotes.
std::string MaskScript(std::string_view script, bool* ansi_c) {
  std::string text = std::regex_replace(std::string(script), PlaceholderRegex(), "GGVAR");
  std::string out;
  out.reserve(text.size());
  enum { kNormal, kSingle, kDouble, kComment } state = kNormal;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    switch (state) {
      case kNormal:
        if (c == '\\' && i + 1 < text.size()) {
          out += "  ";
          ++i;
        } else if (c == '\'') {
          if (i > 0 && text[i - 1] == '$') *ansi_c = true;
          state = kSingle;
          out += c;
        } else if (c == '"') {
          state = kDouble;
          out += c;
        } else if (c == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(text[i - 1])) ||
                                text[i - 1] == ';')) {
          state = kComment;
        } else {
          out += c;
        }
        break;
      case kSingle:
        if (c == '\'') {
          state = kNormal;
          out += c;
        } else {
          out += c == '\n' ? '\n' : ' ';
        }
        break;
      case kDouble:
        if (c == '\\' && i + 1 < text.size()) {
          out += "  ";
          ++i;
        } else if (c == '"') {
          state = kNormal;
          out += c;
        } else {
          out += c == '\n' ? '\n' : ' ';
        }
        break;
      case kComment:
        if (c == '\n') {
          state = kNormal;
          out += c;
        }
        break;
    }
  }
  return out;
}

struct BashismRule {
  const char* pattern;
  const char* message;
};

// Command start: beginning of text/line or after ; & | ( ` or whitespace.
#define CMD_START "(^|[\\s;&|(`])"
const BashismRule kBashismRules[] = {
    {CMD_START "\\[\\[(\\s|$)", "[[ ]] test (bash): use [ ] or case"},
    {"(^|\\s)==(\\s|$)", "== in a test (bash): use ="},
    {CMD_START "function\\s+[A-Za-z_][A-Za-z0-9_]*",
     "function keyword (bash): use name() { ...; }"},
    {CMD_START "[A-Za-z_][A-Za-z0-9_]*\\+?=\\(", "array assignment name=( ) (bash)"},
    {"\\$\\{#?[A-Za-z_][A-Za-z0-9_]*\\[", "array expansion ${name[...]} (bash)"},
    {"<<<", "here-string <<< (bash): use a pipe or a here-document"},
    {CMD_START "source\\s", "source (bash): use . FILE"},
    {"&>", "&> redirection (bash): use >FILE 2>&1"},
    {"(^|[^$])\\{[^{}\\s,]*,[^{}\\s]*\\}", "brace expansion {a,b} (bash)"},
    {"(^|[^$])\\{[A-Za-z0-9]+\\.\\.[A-Za-z0-9]+\\}", "brace expansion {1..3} (bash)"},
    {CMD_START "\\(\\(", "(( )) arithmetic command (bash): use [ $((...)) -ne 0 ]"},
    {"(^|\\s)pipefail(\\s|$)",
     "set -o pipefail (bash; dash in Debian 12 / Raspberry Pi OS lacks it)"},
    {CMD_START "(declare|typeset|readarray|mapfile|let|shopt)(\\s|$)",
     "bash builtin (declare/typeset/readarray/mapfile/let/shopt)"},
};
#undef CMD_START

// First word of each simple command, quotes removed: what the shell runs.
std::vector<std::string> CommandWords(const std::string& script) {
  std::vector<std::string> words;
  // Split into words and separators, respecting quotes (placeholders contain no spaces).
  std::vector<std::string> tokens;
  std::string cur;
  char quote = 0;
  auto flush = [&] {
    if (!cur.empty()) tokens.push_back(cur);
    cur.clear();
  };
  for (size_t i = 0; i < script.size(); ++i) {
    char c = script[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        cur += c;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '\\' && i + 1 < script.size()) {
      if (script[i + 1] != '\n') cur += script[i + 1];
      ++i;
    } else if (c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '`') {
      flush();
      tokens.push_back(std::string(1, ';'));
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      flush();
    } else if (c == '#' && cur.empty()) {
      while (i < script.size() && script[i] != '\n') ++i;
      flush();
      tokens.push_back(";");
    } else {
      cur += c;
    }
  }
  flush();
  static const std::set<std::string> kPrefixes = {"exec", "nohup", "env",  "then",  "do",
                                                  "else", "if",    "elif", "while", "until",
                                                  "!",    "{",     "time", "nice",  "command"};
  static const std::regex kAssignment("^[A-Za-z_][A-Za-z0-9_]*=.*");
  bool at_start = true;
  for (const std::string& t : tokens) {
    if (t == ";") {
      at_start = true;
      continue;
    }
    if (!at_start) continue;
    if (kPrefixes.count(t) != 0 || std::regex_match(t, kAssignment)) continue;
    words.push_back(t);
    at_start = false;
  }
  return words;
}

// Every string inside a JSON value, with its pointer.
void CollectStrings(const json& v, const std::string& pointer,
                    std::vector<std::pair<std::string, std::string>>& out) {
  if (v.is_string()) {
    out.emplace_back(pointer, v.get<std::string>());
  } else if (v.is_object()) {
    for (const auto& [k, child] : v.items()) CollectStrings(child, Child(pointer, k), out);
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) CollectStrings(v[i], Child(pointer, i), out);
  }
}

bool KeyMentionsS3(const json& v) {
  if (!v.is_object()) return false;
  for (const auto& [k, child] : v.items()) {
    std::string lk = core::AsciiLower(k);
    if (lk.find("s3") != std::string::npos || lk.find("bucket") != std::string::npos) return true;
    if (KeyMentionsS3(child)) return true;
  }
  return false;
}

// --- Recipe checks -------------------------------------------------------------------------

struct LifecycleRef {
  std::string pointer;
  const json* lifecycle;
  std::vector<size_t> manifests;  // manifests whose artifacts this lifecycle can run
};

class RecipeChecker {
 public:
  explicit RecipeChecker(const Document& doc) : doc_(doc), root_(doc.root) {}

  std::vector<Finding> Run() {
    if (!root_.is_object()) {
      f_.Error("", "a recipe must be a mapping (object) at the top level");
      return f_.Take();
    }
    CheckTopLevel();
    CheckDefaults();
    CheckDependencies();
    CheckManifests();
    CheckLifecycles();
    CheckS3Dependency();
    return f_.Take();
  }

 private:
  bool Plain(const std::string& pointer) const {
    return doc_.yaml && doc_.plain_scalars.count(pointer) != 0;
  }

  void CheckTopLevel() {
    static const char* const kRequired[] = {"RecipeFormatVersion",  "ComponentName",
                                            "ComponentVersion",     "ComponentPublisher",
                                            "ComponentDescription", "Manifests"};
    static const std::set<std::string> kKnown = {
        "RecipeFormatVersion",   "ComponentName",   "ComponentVersion", "ComponentPublisher",
        "ComponentDescription",  "ComponentSource", "ComponentType",    "ComponentConfiguration",
        "ComponentDependencies", "Manifests",       "Lifecycle"};
    for (const char* key : kRequired) {
      if (!root_.contains(key)) f_.Error("", std::string("missing required key ") + key);
    }
    for (const auto& [key, value] : root_.items()) {
      if (kKnown.count(key) != 0) continue;
      std::string hint;
      for (const std::string& k : kKnown) {
        if (core::AsciiLower(k) == core::AsciiLower(key))
          hint = " (keys are case-sensitive: " + k + ")";
      }
      f_.Error(Child("", key), "unknown top-level key \"" + key + "\"" + hint);
    }
    if (root_.contains("RecipeFormatVersion")) {
      const json& v = root_["RecipeFormatVersion"];
      if (!v.is_string() || v.get<std::string>() != kRecipeFormatVersion) {
        f_.Error("/RecipeFormatVersion",
                 "RecipeFormatVersion must be the string '2020-01-25' (the only format), not " +
                     (v.is_string() ? "\"" + v.get<std::string>() + "\"" : TypeName(v)));
      } else if (Plain("/RecipeFormatVersion")) {
        f_.Error("/RecipeFormatVersion",
                 "quote RecipeFormatVersion: '2020-01-25' (unquoted, YAML 1.1 reads a date)");
      }
    }
    if (root_.contains("ComponentName")) {
      const json& v = root_["ComponentName"];
      if (!v.is_string() || v.get<std::string>().empty()) {
        f_.Error("/ComponentName", "ComponentName must be a non-empty string");
      } else {
        std::string name = v.get<std::string>();
        if (name.rfind("aws.greengrass.", 0) == 0) {
          f_.Error("/ComponentName",
                   "ComponentName \"" + name +
                       "\" uses the reserved aws.greengrass. prefix; use your reverse DNS "
                       "name (e.g. com.example.StoreHub)");
        } else if (name.find('.') == std::string::npos) {
          f_.Warn("/ComponentName",
                  "ComponentName \"" + name + "\" is not reverse DNS (e.g. com.example.StoreHub)");
        }
      }
    }
    if (root_.contains("ComponentVersion")) {
      static const std::regex kSemver(
          "^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)"
          "(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$");
      const json& v = root_["ComponentVersion"];
      if (!v.is_string() || !std::regex_match(v.get<std::string>(), kSemver)) {
        f_.Error("/ComponentVersion",
                 "ComponentVersion must be a semantic version string like '1.2.3', not " +
                     (v.is_string() ? "\"" + v.get<std::string>() + "\"" : TypeName(v)));
      } else if (Plain("/ComponentVersion")) {
        f_.Warn("/ComponentVersion", "quote ComponentVersion ('" + v.get<std::string>() + "')");
      }
    }
    for (const char* key : {"ComponentPublisher", "ComponentDescription"}) {
      if (root_.contains(key) && !root_[key].is_string()) {
        f_.Error(Child("", key), std::string(key) + " must be a string");
      }
    }
  }

  void CheckDefaults() {
    if (!root_.contains("ComponentConfiguration")) return;
    const json& cc = root_["ComponentConfiguration"];
    if (!cc.is_object()) {
      f_.Error("/ComponentConfiguration", "ComponentConfiguration must be a mapping");
      return;
    }
    for (const auto& [key, value] : cc.items()) {
      if (key != "DefaultConfiguration") {
        f_.Error(
            Child("/ComponentConfiguration", key),
            "unknown key \"" + key + "\" in ComponentConfiguration (only DefaultConfiguration)");
      }
    }
    if (!cc.contains("DefaultConfiguration")) return;
    const json& dc = cc["DefaultConfiguration"];
    if (!dc.is_object()) {
      f_.Error("/ComponentConfiguration/DefaultConfiguration",
               "DefaultConfiguration must be a mapping");
      return;
    }
    WarnNumbers(dc, "/ComponentConfiguration/DefaultConfiguration", "DefaultConfiguration");
  }

  void WarnNumbers(const json& v, const std::string& pointer, const std::string& what) {
    if (v.is_number()) {
      f_.Warn(pointer, "number " + v.dump() + " in " + what + ": write it as a string (\"" +
                           ConfigurationText(v) +
                           "\"); the nucleus may hand numbers back as floats (8080 -> 8080.0)");
    } else if (v.is_object()) {
      for (const auto& [k, child] : v.items()) WarnNumbers(child, Child(pointer, k), what);
    } else if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i) WarnNumbers(v[i], Child(pointer, i), what);
    }
  }

  void CheckDependencies() {
    if (!root_.contains("ComponentDependencies")) return;
    const json& deps = root_["ComponentDependencies"];
    if (!deps.is_object()) {
      f_.Error("/ComponentDependencies", "ComponentDependencies must be a mapping of names");
      return;
    }
    for (const auto& [name, dep] : deps.items()) {
      std::string p = Child("/ComponentDependencies", name);
      if (!dep.is_object()) {
        f_.Error(p,
                 "dependency " + name + " must be a mapping (VersionRequirement, DependencyType)");
        continue;
      }
      for (const auto& [k, v] : dep.items()) {
        if (k == "VersionRequirement") {
          if (!v.is_string()) f_.Error(Child(p, k), "VersionRequirement must be a string");
        } else if (k == "DependencyType") {
          if (!v.is_string() || (v != "HARD" && v != "SOFT")) {
            f_.Error(Child(p, k), "DependencyType must be HARD or SOFT");
          }
        } else {
          f_.Error(Child(p, k), "unknown key \"" + k + "\" in a dependency");
        }
      }
    }
  }

  void CheckManifests() {
    if (!root_.contains("Manifests")) return;
    const json& manifests = root_["Manifests"];
    if (!manifests.is_array() || manifests.empty()) {
      f_.Error("/Manifests", "Manifests must be a non-empty list");
      return;
    }
    static const std::set<std::string> kManifestKeys = {"Platform", "Lifecycle", "Artifacts",
                                                        "Selections", "Name"};
    for (size_t i = 0; i < manifests.size(); ++i) {
      std::string p = Child("/Manifests", i);
      const json& m = manifests[i];
      if (!m.is_object()) {
        f_.Error(p, "a manifest must be a mapping");
        continue;
      }
      for (const auto& [k, v] : m.items()) {
        if (kManifestKeys.count(k) == 0)
          f_.Error(Child(p, k), "unknown manifest key \"" + k + "\"");
      }
      if (m.contains("Platform")) {
        const json& platform = m["Platform"];
        if (!platform.is_object()) {
          f_.Error(Child(p, "Platform"), "Platform must be a mapping (os, architecture)");
        } else {
          for (const auto& [k, v] : platform.items()) {
            if (!v.is_string())
              f_.Error(Child(Child(p, "Platform"), k), "Platform values are strings");
          }
          if (platform.contains("architecture") && platform["architecture"].is_string()) {
            static const std::set<std::string> kArch = {"aarch64", "arm", "amd64", "x86", "*"};
            std::string a = platform["architecture"];
            if (kArch.count(a) == 0 && !(a.size() > 1 && a.front() == '/' && a.back() == '/')) {
              f_.Warn(Child(Child(p, "Platform"), "architecture"),
                      "architecture \"" + a +
                          "\" is not a value the nucleus reports (aarch64, arm, amd64, x86)");
            }
          }
        }
      }
      if (m.contains("Artifacts")) CheckArtifacts(m["Artifacts"], Child(p, "Artifacts"));
    }
  }

  void CheckArtifacts(const json& artifacts, const std::string& p) {
    if (!artifacts.is_array()) {
      f_.Error(p, "Artifacts must be a list");
      return;
    }
    for (size_t j = 0; j < artifacts.size(); ++j) {
      std::string ap = Child(p, j);
      const json& a = artifacts[j];
      if (!a.is_object()) {
        f_.Error(ap, "an artifact must be a mapping (URI, Unarchive, Permission)");
        continue;
      }
      for (const auto& [k, v] : a.items()) {
        static const std::set<std::string> kKeys = {"URI", "Unarchive", "Permission", "Digest",
                                                    "Algorithm"};
        if (kKeys.count(k) == 0) f_.Error(Child(ap, k), "unknown artifact key \"" + k + "\"");
      }
      if (!a.contains("URI") || !a["URI"].is_string() || a["URI"].get<std::string>().empty()) {
        f_.Error(ap, "an artifact needs a URI");
      }
      if (a.contains("Unarchive")) {
        const json& u = a["Unarchive"];
        if (!u.is_string() || (u != "NONE" && u != "ZIP")) {
          f_.Error(Child(ap, "Unarchive"), "Unarchive must be NONE or ZIP");
        }
      }
      if (a.contains("Permission")) {
        const json& perm = a["Permission"];
        std::string pp = Child(ap, "Permission");
        if (!perm.is_object()) {
          f_.Error(pp, "Permission must be a mapping {Read: ..., Execute: ...}");
          continue;
        }
        for (const auto& [k, v] : perm.items()) {
          if (k != "Read" && k != "Execute") {
            f_.Error(Child(pp, k), "unknown Permission key \"" + k + "\" (Read or Execute)");
          } else if (!v.is_string() || (v != "NONE" && v != "OWNER" && v != "ALL")) {
            f_.Error(Child(pp, k), k + " must be NONE, OWNER or ALL");
          }
        }
      }
    }
  }

  std::vector<LifecycleRef> Lifecycles() const {
    std::vector<LifecycleRef> out;
    const json* manifests = root_.contains("Manifests") && root_["Manifests"].is_array()
                                ? &root_["Manifests"]
                                : nullptr;
    std::vector<size_t> without_own;
    if (manifests != nullptr) {
      for (size_t i = 0; i < manifests->size(); ++i) {
        const json& m = (*manifests)[i];
        if (m.is_object() && m.contains("Lifecycle")) {
          out.push_back({Child(Child("/Manifests", i), "Lifecycle"), &m["Lifecycle"], {i}});
        } else {
          without_own.push_back(i);
        }
      }
    }
    if (root_.contains("Lifecycle")) {
      const json& global = root_["Lifecycle"];
      bool keyed_by_selection = global.is_object() && !global.empty();
      if (global.is_object()) {
        for (const auto& [k, v] : global.items()) {
          if (IsStepName(k) || !v.is_object()) keyed_by_selection = false;
        }
      }
      if (keyed_by_selection) {
        for (const auto& [k, v] : global.items()) {
          out.push_back({Child("/Lifecycle", k), &v, without_own});
        }
      } else {
        out.push_back({"/Lifecycle", &global, without_own});
      }
    }
    return out;
  }

  void CheckLifecycles() {
    std::vector<LifecycleRef> lifecycles = Lifecycles();
    if (lifecycles.empty()) {
      f_.Error("",
               "no Lifecycle (neither global nor in a manifest): the component would do nothing");
      return;
    }
    const json defaults = DefaultConfiguration();
    std::set<std::string> referenced;  // first pointer segment of every {configuration:/x}
    for (const LifecycleRef& ref : lifecycles) {
      const json& lc = *ref.lifecycle;
      if (!lc.is_object()) {
        f_.Error(ref.pointer, "Lifecycle must be a mapping of steps (Install, Run, ...)");
        continue;
      }
      for (const auto& item : lc.items()) {
        const std::string& k = item.key();
        if (IsStepName(k)) continue;
        bool step_only = std::any_of(std::begin(kStepOnlyKeys), std::end(kStepOnlyKeys),
                                     [&](const char* s) { return k == s; });
        if (step_only) {
          f_.Error(Child(ref.pointer, k),
                   k + " at lifecycle level has no effect: put it inside the step (e.g. Run: {" +
                       k + ": ..., Script: ...})");
        } else {
          f_.Error(Child(ref.pointer, k), "unknown lifecycle step \"" + k + "\"");
        }
      }
      if (lc.contains("Run") && lc.contains("Startup")) {
        f_.Error(ref.pointer, "Run and Startup are alternatives: keep one");
      }
      // {configuration:/x} anywhere in the lifecycle (scripts, Setenv values, Skipif).
      std::vector<std::pair<std::string, std::string>> strings;
      CollectStrings(lc, ref.pointer, strings);
      for (const auto& [pointer, text] : strings) {
        for (std::sregex_iterator it(text.begin(), text.end(), PlaceholderRegex()), end; it != end;
             ++it) {
          std::string ns = (*it)[1];
          std::string key = (*it)[2];
          if (ns == "configuration") {
            referenced.insert(key.substr(1, key.find('/', 1) == std::string::npos
                                                ? std::string::npos
                                                : key.find('/', 1) - 1));
            if (!IsJsonPointer(key)) {
              f_.Error(pointer,
                       "{configuration:" + key + "} is not a JSON pointer (write /" + key + ")");
            } else if (Resolve(defaults, key) == nullptr) {
              f_.Error(pointer, "{configuration:" + key +
                                    "} has no value in DefaultConfiguration: the nucleus would "
                                    "leave the placeholder text in the command");
            }
          } else if (ns != "artifacts" && ns != "work" && ns != "kernel" && ns != "iot") {
            f_.Error(pointer, "unknown interpolation namespace in " + it->str());
          } else if ((ns == "artifacts" && key != "path" && key != "decompressedPath") ||
                     (ns == "work" && key != "path") || (ns == "kernel" && key != "rootPath") ||
                     (ns == "iot" && key != "thingName")) {
            f_.Error(pointer, "unknown variable " + it->str());
          }
        }
      }
      for (const auto& [step_name, step] : lc.items()) {
        if (!IsStepName(step_name)) continue;
        CheckStep(ref, step_name, step);
      }
    }
    if (defaults.is_object()) {
      for (const auto& [key, value] : defaults.items()) {
        if (referenced.count(EscapeToken(key)) == 0) {
          f_.Warn(Child("/ComponentConfiguration/DefaultConfiguration", key),
                  "\"" + key + "\" is never used in a lifecycle ({configuration:/" + key +
                      "}): a deployment that changes it changes nothing");
        }
      }
    }
  }

  void CheckStep(const LifecycleRef& ref, const std::string& step_name, const json& step) {
    std::string p = Child(ref.pointer, step_name);
    if (step_name == "Setenv") {
      if (!step.is_object()) f_.Error(p, "Setenv must be a mapping of variable names to values");
      return;
    }
    std::string script;
    std::string script_pointer = p;
    if (step.is_string()) {
      script = step.get<std::string>();
    } else if (step.is_object()) {
      static const std::set<std::string> kStepKeys = {"Script", "RequiresPrivilege", "Skipif",
                                                      "Timeout", "Setenv"};
      for (const auto& [k, v] : step.items()) {
        if (kStepKeys.count(k) == 0) f_.Error(Child(p, k), "unknown key \"" + k + "\" in a step");
      }
      if (!step.contains("Script") || !step["Script"].is_string()) {
        f_.Error(p, step_name + " needs a Script (string)");
        return;
      }
      script = step["Script"].get<std::string>();
      script_pointer = Child(p, "Script");
      if (step.contains("RequiresPrivilege")) {
        const json& rp = step["RequiresPrivilege"];
        bool ok = rp.is_boolean() || (rp.is_string() && (rp == "true" || rp == "false"));
        if (!ok) f_.Error(Child(p, "RequiresPrivilege"), "RequiresPrivilege must be true or false");
      }
    } else {
      f_.Error(p, step_name + " must be a script (string) or a mapping with Script");
      return;
    }
    for (const std::string& problem : FindBashisms(script)) {
      f_.Error(script_pointer, problem + " — scripts run as sh -c (dash on Raspberry Pi OS)");
    }
    CheckArtifactExecution(ref, step_name, script, script_pointer);
  }

  // An artifact whose path is the command of a script must be executable for its owner.
  void CheckArtifactExecution(const LifecycleRef& ref, const std::string& step_name,
                              const std::string& script, const std::string& script_pointer) {
    if (!root_.contains("Manifests") || !root_["Manifests"].is_array()) return;
    const json& manifests = root_["Manifests"];
    for (const std::string& word : CommandWords(script)) {
      for (size_t mi : ref.manifests) {
        const json& m = manifests[mi];
        if (!m.is_object() || !m.contains("Artifacts") || !m["Artifacts"].is_array()) continue;
        const json& artifacts = m["Artifacts"];
        for (size_t j = 0; j < artifacts.size(); ++j) {
          const json& a = artifacts[j];
          if (!a.is_object() || !a.contains("URI") || !a["URI"].is_string()) continue;
          std::string uri = a["URI"];
          std::string file = uri.substr(uri.find_last_of('/') + 1);
          bool zip = a.contains("Unarchive") && a["Unarchive"] == "ZIP";
          bool runs = false;
          if (!file.empty() &&
              (word == "{artifacts:path}/" + file ||
               (word.size() > file.size() + 1 &&
                word.compare(word.size() - file.size() - 1, std::string::npos, "/" + file) == 0 &&
                word.rfind("{artifacts:path}", 0) == 0))) {
            runs = true;
          }
          if (zip) {
            std::string base = file;
            if (base.size() > 4 && core::AsciiLower(base.substr(base.size() - 4)) == ".zip") {
              base.resize(base.size() - 4);
            }
            if (word.rfind("{artifacts:decompressedPath}/" + base + "/", 0) == 0) runs = true;
          }
          if (!runs) continue;
          std::string execute = "NONE";
          if (a.contains("Permission") && a["Permission"].is_object() &&
              a["Permission"].contains("Execute") && a["Permission"]["Execute"].is_string()) {
            execute = a["Permission"]["Execute"];
          }
          if (execute == "NONE") {
            f_.Error(Child(Child(Child("/Manifests", mi), "Artifacts"), j),
                     "the " + step_name + " script (" + script_pointer + ") runs artifact " + file +
                         " as a command, but its Permission.Execute is NONE (the "
                         "default): the component user gets \"Permission denied\". Add "
                         "Permission: {Read: OWNER, Execute: OWNER}");
          }
        }
      }
    }
  }

  json DefaultConfiguration() const {
    if (root_.contains("ComponentConfiguration") && root_["ComponentConfiguration"].is_object() &&
        root_["ComponentConfiguration"].contains("DefaultConfiguration")) {
      return root_["ComponentConfiguration"]["DefaultConfiguration"];
    }
    return json::object();
  }

  void CheckS3Dependency() {
    bool uses_s3 = KeyMentionsS3(DefaultConfiguration());
    if (!uses_s3) return;
    const json* dep = nullptr;
    if (root_.contains("ComponentDependencies") && root_["ComponentDependencies"].is_object() &&
        root_["ComponentDependencies"].contains(kTokenExchangeService)) {
      dep = &root_["ComponentDependencies"][std::string(kTokenExchangeService)];
    }
    bool hard = dep != nullptr && dep->is_object() && dep->contains("DependencyType") &&
                (*dep)["DependencyType"] == "HARD";
    if (!hard) {
      f_.Warn("/ComponentDependencies",
              "the component uses S3 (its configuration names a bucket) but has no HARD "
              "dependency on aws.greengrass.TokenExchangeService: at boot it may start before "
              "the credential endpoint and fail to connect");
    }
  }

  const Document& doc_;
  const json& root_;
  Findings f_;
};

// --- Config update checks ------------------------------------------------------------------

class UpdateChecker {
 public:
  UpdateChecker(const Document& recipe, const Document& update)
      : recipe_(recipe.root), update_(update) {
    if (recipe_.is_object() && recipe_.contains("ComponentName") &&
        recipe_["ComponentName"].is_string()) {
      component_ = recipe_["ComponentName"];
    }
    if (recipe_.is_object() && recipe_.contains("ComponentConfiguration") &&
        recipe_["ComponentConfiguration"].is_object() &&
        recipe_["ComponentConfiguration"].contains("DefaultConfiguration")) {
      defaults_ = recipe_["ComponentConfiguration"]["DefaultConfiguration"];
    }
  }

  std::vector<Finding> Run() {
    const json& root = update_.root;
    if (!root.is_object() || root.empty()) {
      f_.Error("", "a configuration update must be a JSON object {\"" + Name() +
                       "\": {\"MERGE\": {...}, \"RESET\": [...]}}");
      return f_.Take();
    }
    if (root.contains("components")) {
      CheckCloud(root);
    } else {
      CheckLocal(root);
    }
    return f_.Take();
  }

 private:
  std::string Name() const { return component_.empty() ? "<ComponentName>" : component_; }

  void CheckLocal(const json& root) {
    for (const auto& [key, value] : root.items()) {
      std::string p = Child("", key);
      std::string lk = core::AsciiLower(key);
      if (lk == "merge" || lk == "reset") {
        f_.Error(p, "\"" + key +
                        "\" at the top level: the update needs the component name as "
                        "wrapper, {\"" +
                        Name() +
                        "\": {\"MERGE\": ...}}; without it the nucleus "
                        "changes nothing");
        continue;
      }
      if (!component_.empty() && key != component_) {
        f_.Error(p, "component \"" + key + "\" does not match the recipe's ComponentName \"" +
                        component_ + "\"");
        continue;
      }
      if (!value.is_object()) {
        f_.Error(p, "the value for " + key + " must be an object with MERGE and/or RESET");
        continue;
      }
      if (value.empty()) f_.Error(p, "empty update for " + key + ": give MERGE and/or RESET");
      for (const auto& [op, body] : value.items()) {
        std::string op_pointer = Child(p, op);
        if (op == "MERGE") {
          if (!body.is_object()) {
            f_.Error(op_pointer,
                     "MERGE must be an object of configuration keys, not " + TypeName(body));
          } else {
            CheckMergeKeys(body, op_pointer);
          }
        } else if (op == "RESET") {
          CheckReset(body, op_pointer, "RESET");
        } else if (op == "merge" || op == "reset") {
          std::string upper = op == "merge" ? "MERGE" : "RESET";
          f_.Error(op_pointer, "lower-case \"" + op +
                                   "\" is the cloud deployment's key; "
                                   "greengrass-cli reads only \"" +
                                   upper + "\" (this update would change nothing)");
        } else {
          f_.Error(op_pointer, "unknown key \"" + op + "\" (only MERGE and RESET)");
        }
      }
    }
  }

  void CheckCloud(const json& root) {
    const json& components = root["components"];
    if (!components.is_object()) {
      f_.Error("/components", "components must be an object keyed by component name");
      return;
    }
    bool found = false;
    for (const auto& [name, entry] : components.items()) {
      if (name != component_) continue;  // other components (e.g. the nucleus) are fine
      found = true;
      std::string p = Child("/components", name);
      if (!entry.is_object()) {
        f_.Error(p, "the entry for " + name + " must be an object");
        continue;
      }
      if (entry.contains("componentVersion") && recipe_.contains("ComponentVersion") &&
          entry["componentVersion"] != recipe_["ComponentVersion"]) {
        f_.Warn(Child(p, "componentVersion"),
                "componentVersion " + entry["componentVersion"].dump() +
                    " is not the recipe's ComponentVersion " + recipe_["ComponentVersion"].dump());
      }
      if (!entry.contains("configurationUpdate")) continue;
      const json& cu = entry["configurationUpdate"];
      std::string cp = Child(p, "configurationUpdate");
      if (!cu.is_object()) {
        f_.Error(cp,
                 "configurationUpdate must be an object {\"merge\": \"...\", \"reset\": [...]}");
        continue;
      }
      for (const auto& [op, body] : cu.items()) {
        std::string op_pointer = Child(cp, op);
        if (op == "merge") {
          if (!body.is_string()) {
            f_.Error(op_pointer,
                     "a cloud deployment's merge is a JSON document *as a string* "
                     "(\"{\\\"key\\\":\\\"value\\\"}\"), not " +
                         TypeName(body));
            continue;
          }
          json parsed = json::parse(body.get<std::string>(), nullptr, false);
          if (parsed.is_discarded() || !parsed.is_object()) {
            f_.Error(op_pointer, "merge does not hold a JSON object");
          } else {
            CheckMergeKeys(parsed, op_pointer);
          }
        } else if (op == "reset") {
          CheckReset(body, op_pointer, "reset");
        } else if (op == "MERGE" || op == "RESET") {
          f_.Error(op_pointer, "upper-case \"" + op +
                                   "\" is greengrass-cli's local form; a "
                                   "cloud deployment uses \"" +
                                   core::AsciiLower(op) + "\"");
        } else {
          f_.Error(op_pointer, "unknown key \"" + op + "\" in configurationUpdate");
        }
      }
    }
    if (!found && !component_.empty()) {
      f_.Error("/components", "no entry for the recipe's component \"" + component_ + "\"");
    }
  }

  void CheckMergeKeys(const json& merge, const std::string& pointer) {
    for (const auto& [k, v] : merge.items()) {
      if (defaults_.is_object() && !defaults_.contains(k)) {
        f_.Warn(Child(pointer, k), "\"" + k +
                                       "\" is not a key of the recipe's "
                                       "DefaultConfiguration (typo?)");
      }
    }
    // Numbers: same advice as for DefaultConfiguration.
    std::vector<std::pair<std::string, const json*>> stack = {{pointer, &merge}};
    while (!stack.empty()) {
      auto [p, v] = stack.back();
      stack.pop_back();
      if (v->is_number()) {
        f_.Warn(p, "number " + v->dump() + " in the update: write it as a string (\"" +
                       ConfigurationText(*v) + "\")");
      } else if (v->is_object()) {
        for (const auto& [k, c] : v->items()) stack.emplace_back(Child(p, k), &c);
      } else if (v->is_array()) {
        for (size_t i = 0; i < v->size(); ++i) stack.emplace_back(Child(p, i), &(*v)[i]);
      }
    }
  }

  void CheckReset(const json& body, const std::string& pointer, const std::string& name) {
    if (!body.is_array()) {
      f_.Error(pointer, name +
                            " must be an array of JSON pointers ([\"/key\"], or [\"\"] for "
                            "everything), not " +
                            TypeName(body));
      return;
    }
    for (size_t i = 0; i < body.size(); ++i) {
      const json& item = body[i];
      if (!item.is_string() || !IsJsonPointer(item.get<std::string>())) {
        f_.Error(Child(pointer, i),
                 name + " items are JSON pointers: \"\" or \"/key\", not " +
                     (item.is_string() ? "\"" + item.get<std::string>() + "\"" : TypeName(item)));
      } else {
        std::string ptr = item;
        if (!ptr.empty() && defaults_.is_object() && Resolve(defaults_, ptr) == nullptr) {
          f_.Warn(Child(pointer, i), "\"" + ptr + "\" is not in the recipe's DefaultConfiguration");
        }
      }
    }
  }

  const json& recipe_;
  const Document& update_;
  std::string component_;
  json defaults_ = json::object();
  Findings f_;
};

// Deep merge; `fill_only`: keep existing values (defaults never replace).
void MergeInto(json& target, const json& source, bool fill_only) {
  if (!target.is_object() || !source.is_object()) {
    if (!fill_only) target = source;
    return;
  }
  for (const auto& [k, v] : source.items()) {
    if (!target.contains(k)) {
      target[k] = v;
    } else if (target[k].is_object() && v.is_object()) {
      MergeInto(target[k], v, fill_only);
    } else if (!fill_only) {
      target[k] = v;
    }
  }
}

void RemovePointer(json& doc, const std::string& pointer) {
  if (pointer.empty()) {
    doc = json::object();
    return;
  }
  try {
    json::json_pointer ptr(pointer);
    if (!doc.contains(ptr)) return;
    json& parent = doc.at(ptr.parent_pointer());
    if (parent.is_object()) parent.erase(ptr.back());
    // Array elements cannot be reset (the nucleus refuses them too).
  } catch (const json::exception&) {
  }
}

bool PlatformValueMatches(const std::string& want, const std::string& have) {
  if (want == "*") return true;
  if (want.size() >= 2 && want.front() == '/' && want.back() == '/') {
    try {
      return std::regex_match(have, std::regex(want.substr(1, want.size() - 2)));
    } catch (const std::regex_error&) {
      return false;
    }
  }
  return want == have;
}

std::string JavaDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  double a = std::fabs(v);
  if (a == 0 || (a >= 1e-3 && a < 1e7)) {
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    std::string s(buf, end);
    if (s.find('.') == std::string::npos) s += ".0";
    return s;
  }
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string s(buf, end);  // 1e+07, 1.5e-05
  size_t e = s.find('e');
  std::string mantissa = s.substr(0, e);
  std::string exponent = s.substr(e + 1);
  if (mantissa.find('.') == std::string::npos) mantissa += ".0";
  bool negative = exponent[0] == '-';
  size_t digits = exponent.find_first_not_of("+-0");
  exponent = digits == std::string::npos ? "0" : exponent.substr(digits);
  return mantissa + "E" + (negative ? "-" : "") + exponent;
}

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

std::vector<Finding> CheckRecipe(const Document& recipe) { return RecipeChecker(recipe).Run(); }

std::vector<Finding> CheckConfigUpdate(const Document& recipe, const Document& update) {
  return UpdateChecker(recipe, update).Run();
}

std::vector<std::string> FindBashisms(std::string_view script) {
  bool ansi_c = false;
  std::string masked = MaskScript(script, &ansi_c);
  std::vector<std::string> out;
  if (ansi_c) out.emplace_back("$'...' quoting (bash): use printf");
  for (const BashismRule& rule : kBashismRules) {
    static thread_local std::map<const char*, std::regex> cache;
    auto it = cache.find(rule.pattern);
    if (it == cache.end()) it = cache.emplace(rule.pattern, std::regex(rule.pattern)).first;
    if (std::regex_search(masked, it->second)) out.emplace_back(rule.message);
  }
  return out;
}

Result<ConfigUpdate> ExtractConfigUpdate(const Document& update, const std::string& component) {
  const json& root = update.root;
  ConfigUpdate out;
  auto bad = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, (update.path.empty() ? "" : update.path + ": ") +
                                                   why + " (machub greengrass check explains)");
  };
  if (!root.is_object()) return bad("not a JSON object");
  const json* body = nullptr;
  bool cloud = root.contains("components");
  if (cloud) {
    if (root["components"].is_object() && root["components"].contains(component) &&
        root["components"][component].is_object() &&
        root["components"][component].contains("configurationUpdate")) {
      body = &root["components"][component]["configurationUpdate"];
    }
  } else if (root.contains(component)) {
    body = &root[component];
  }
  if (body == nullptr || !body->is_object()) return bad("no update for " + component);
  const char* merge_key = cloud ? "merge" : "MERGE";
  const char* reset_key = cloud ? "reset" : "RESET";
  if (body->contains(merge_key)) {
    const json& m = (*body)[merge_key];
    if (cloud) {
      if (!m.is_string()) return bad("merge is not a string");
      out.merge = json::parse(m.get<std::string>(), nullptr, false);
      if (out.merge.is_discarded() || !out.merge.is_object()) return bad("merge is not an object");
    } else {
      if (!m.is_object()) return bad("MERGE is not an object");
      out.merge = m;
    }
  }
  if (body->contains(reset_key)) {
    const json& r = (*body)[reset_key];
    if (!r.is_array()) return bad(std::string(reset_key) + " is not an array");
    for (const json& item : r) {
      if (!item.is_string() || !IsJsonPointer(item.get<std::string>())) {
        return bad(std::string(reset_key) + " holds a value that is not a JSON pointer");
      }
      out.reset.push_back(item);
    }
  }
  return out;
}

json ResolveConfiguration(const json& running, const json& default_configuration,
                          const std::vector<ConfigUpdate>& updates) {
  json config = running.is_object() ? running : json::object();
  json defaults = default_configuration.is_object() ? default_configuration : json::object();
  // A deployment without an update still applies the defaults.
  std::vector<ConfigUpdate> steps = updates;
  if (steps.empty()) steps.emplace_back();
  for (const ConfigUpdate& u : steps) {
    for (const std::string& pointer : u.reset) RemovePointer(config, pointer);
    MergeInto(config, defaults, /*fill_only=*/true);
    if (u.merge.is_object()) MergeInto(config, u.merge, /*fill_only=*/false);
  }
  return config;
}

unsigned ArtifactView::Mode(bool legacy) const {
  // Permission.toFileSystemPermission() of the nucleus, both generations.
  const bool exec_owner = execute == "OWNER" || execute == "ALL";
  const bool exec_all = execute == "ALL";
  const bool read_all = read == "ALL";
  unsigned mode = 0400;  // the owner always reads
  if (exec_owner) mode |= 0100;
  if (legacy) {
    if (read_all) mode |= 0044;
    if (exec_all) mode |= 0011;
  } else {
    // "user group is considered to be owner"; execute implies read.
    if (read == "OWNER" || read_all || exec_owner) mode |= 0040;
    if (exec_owner) mode |= 0010;
    if (read_all || exec_all) mode |= 0004;
    if (exec_all) mode |= 0001;
  }
  return mode;
}

Result<PlatformView> SelectPlatform(const Document& recipe, const NucleusContext& context) {
  const json& root = recipe.root;
  auto invalid = [](const std::string& why) { return Status(ErrorCode::kInvalidArgument, why); };
  if (!root.is_object() || !root.contains("ComponentName") || !root["ComponentName"].is_string() ||
      !root.contains("ComponentVersion") || !root["ComponentVersion"].is_string() ||
      !root.contains("Manifests") || !root["Manifests"].is_array()) {
    return invalid("not a recipe (ComponentName, ComponentVersion and Manifests are needed)");
  }
  PlatformView view;
  view.component = root["ComponentName"];
  view.version = root["ComponentVersion"];
  const json& manifests = root["Manifests"];
  for (size_t i = 0; i < manifests.size(); ++i) {
    const json& m = manifests[i];
    if (!m.is_object()) continue;
    bool matches = true;
    if (m.contains("Platform") && m["Platform"].is_object()) {
      for (const auto& [k, v] : m["Platform"].items()) {
        if (!v.is_string()) {
          matches = false;
        } else if (k == "os") {
          matches = matches && PlatformValueMatches(v, context.os);
        } else if (k == "architecture") {
          matches = matches && PlatformValueMatches(v, context.architecture);
        } else {
          matches = matches && v == "*";  // attributes this model does not know
        }
      }
    }
    if (!matches) continue;
    view.manifest_index = i;
    if (m.contains("Artifacts") && m["Artifacts"].is_array()) {
      for (const json& a : m["Artifacts"]) {
        if (!a.is_object() || !a.contains("URI") || !a["URI"].is_string()) continue;
        ArtifactView av;
        av.uri = a["URI"];
        av.file_name = av.uri.substr(av.uri.find_last_of('/') + 1);
        if (a.contains("Unarchive") && a["Unarchive"].is_string()) av.unarchive = a["Unarchive"];
        if (a.contains("Permission") && a["Permission"].is_object()) {
          const json& p = a["Permission"];
          if (p.contains("Read") && p["Read"].is_string()) av.read = p["Read"];
          if (p.contains("Execute") && p["Execute"].is_string()) av.execute = p["Execute"];
        }
        view.artifacts.push_back(std::move(av));
      }
    }
    if (m.contains("Lifecycle")) {
      view.lifecycle = m["Lifecycle"];
    } else if (root.contains("Lifecycle") && root["Lifecycle"].is_object()) {
      const json& global = root["Lifecycle"];
      json selections = m.contains("Selections") && m["Selections"].is_array()
                            ? m["Selections"]
                            : json::array({"all"});
      view.lifecycle = global;
      for (const json& s : selections) {
        if (s.is_string() && global.contains(s.get<std::string>()) &&
            global[s.get<std::string>()].is_object() && !IsStepName(s.get<std::string>())) {
          view.lifecycle = global[s.get<std::string>()];
          break;
        }
      }
    } else {
      view.lifecycle = json::object();
    }
    return view;
  }
  return Status(ErrorCode::kNotFound,
                "no manifest matches os " + context.os + ", architecture " + context.architecture);
}

Result<StepView> GetStep(const PlatformView& view, const std::string& step) {
  if (!view.lifecycle.is_object() || !view.lifecycle.contains(step)) {
    return Status(ErrorCode::kNotFound, "the lifecycle has no " + step + " step");
  }
  const json& s = view.lifecycle[step];
  StepView out;
  if (s.is_string()) {
    out.script = s;
  } else if (s.is_object() && s.contains("Script") && s["Script"].is_string()) {
    out.script = s["Script"];
    if (s.contains("RequiresPrivilege")) {
      const json& rp = s["RequiresPrivilege"];
      out.requires_privilege = (rp.is_boolean() && rp.get<bool>()) || rp == "true";
    }
  } else {
    return Status(ErrorCode::kInvalidArgument, step + " has no Script");
  }
  return out;
}

std::string ConfigurationText(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_null()) return "null";
  if (value.is_number_integer()) return value.dump();
  if (value.is_number_float()) return JavaDouble(value.get<double>());
  return value.dump();  // containers: compact JSON, keys sorted (std::map)
}

std::string Interpolate(std::string_view text, const PlatformView& view,
                        const NucleusContext& context, const json& configuration) {
  std::string in(text);
  std::string out;
  size_t last = 0;
  for (std::sregex_iterator it(in.begin(), in.end(), PlaceholderRegex()), end; it != end; ++it) {
    const std::smatch& m = *it;
    out.append(in, last, static_cast<size_t>(m.position(0)) - last);
    last = static_cast<size_t>(m.position(0) + m.length(0));
    std::string ns = m[1];
    std::string key = m[2];
    std::optional<std::string> value;
    if (ns == "artifacts" && key == "path") {
      value = context.root + "/packages/artifacts/" + view.component + "/" + view.version;
    } else if (ns == "artifacts" && key == "decompressedPath") {
      value =
          context.root + "/packages/artifacts-unarchived/" + view.component + "/" + view.version;
    } else if (ns == "work" && key == "path") {
      value = context.root + "/work/" + view.component;
    } else if (ns == "kernel" && key == "rootPath") {
      value = context.root;
    } else if (ns == "iot" && key == "thingName") {
      value = context.thing_name;
    } else if (ns == "configuration") {
      if (const json* v = Resolve(configuration, key); v != nullptr) value = ConfigurationText(*v);
    }
    out += value ? *value : m.str();
  }
  out.append(in, last, std::string::npos);
  return out;
}

// --- Command line ----------------------------------------------------------------------------

int RunCheck(const std::string& recipe_path, const std::vector<std::string>& update_paths,
             bool strict) {
  auto recipe = LoadDocument(recipe_path);
  if (!recipe.ok()) {
    std::fprintf(stderr, "machub: %s\n", recipe.status().message().c_str());
    return 2;
  }
  int errors = 0;
  int warnings = 0;
  auto report = [&](const std::string& file, const std::vector<Finding>& findings) {
    for (const Finding& f : findings) {
      (f.severity == Severity::kError ? errors : warnings)++;
      std::printf("%s\n", f.Format(file).c_str());
    }
  };
  report(recipe_path, CheckRecipe(*recipe));
  for (const std::string& path : update_paths) {
    auto update = LoadDocument(path);
    if (!update.ok()) {
      std::fprintf(stderr, "machub: %s\n", update.status().message().c_str());
      return 2;
    }
    report(path, CheckConfigUpdate(*recipe, *update));
  }
  std::fprintf(stderr, "machub greengrass check: %d error(s), %d warning(s) in %zu file(s)\n",
               errors, warnings, 1 + update_paths.size());
  return errors > 0 || (strict && warnings > 0) ? 1 : 0;
}

int RunRender(const RenderOptions& options) {
  auto fail = [](const Status& st) {
    std::fprintf(stderr, "machub: %s\n", st.message().c_str());
    return st.code() == ErrorCode::kNotFound ? 1 : 2;
  };
  auto recipe = LoadDocument(options.recipe_path);
  if (!recipe.ok()) return fail(recipe.status());
  auto view = SelectPlatform(*recipe, options.context);
  if (!view.ok()) return fail(view.status());
  std::vector<ConfigUpdate> updates;
  for (const std::string& path : options.update_paths) {
    auto doc = LoadDocument(path);
    if (!doc.ok()) return fail(doc.status());
    auto u = ExtractConfigUpdate(*doc, view->component);
    if (!u.ok()) return fail(u.status());
    updates.push_back(std::move(u).value());
  }
  json defaults = json::object();
  const json& root = recipe->root;
  if (root.contains("ComponentConfiguration") && root["ComponentConfiguration"].is_object() &&
      root["ComponentConfiguration"].contains("DefaultConfiguration")) {
    defaults = root["ComponentConfiguration"]["DefaultConfiguration"];
  }
  json config = ResolveConfiguration(json::object(), defaults, updates);
  if (options.what == "config") {
    std::printf("%s\n", config.dump(2).c_str());
  } else if (options.what == "modes") {
    for (const ArtifactView& a : view->artifacts) {
      std::printf("%s %04o %s\n", a.file_name.c_str(), a.Mode(options.legacy_modes),
                  a.unarchive.c_str());
    }
  } else if (options.what == "paths") {
    std::printf("component=%s\nversion=%s\nartifacts=%s\ndecompressed=%s\nwork=%s\n",
                view->component.c_str(), view->version.c_str(),
                Interpolate("{artifacts:path}", *view, options.context, config).c_str(),
                Interpolate("{artifacts:decompressedPath}", *view, options.context, config).c_str(),
                Interpolate("{work:path}", *view, options.context, config).c_str());
  } else {
    auto step = GetStep(*view, options.step);
    if (!step.ok()) return fail(step.status());
    std::printf("%s\n", Interpolate(step->script, *view, options.context, config).c_str());
  }
  return 0;
}

void AddGreengrassCommand(CLI::App& app, std::function<int()>& run) {
  struct State {
    std::string recipe;
    std::vector<std::string> updates;
    bool strict = false;
    RenderOptions render;
  };
  auto state = std::make_shared<State>();
  CLI::App* gg = app.add_subcommand("greengrass", "Check or render a Greengrass V2 recipe");
  gg->require_subcommand(1);

  CLI::App* check = gg->add_subcommand(
      "check",
      "Check a recipe (YAML or JSON) and configuration updates against it; exit 1 on "
      "any error");
  check->add_option("recipe", state->recipe, "Recipe file (.yaml/.yml or .json)")->required();
  check->add_option("updates", state->updates,
                    "Configuration updates: greengrass-cli files ({\"<component>\": {\"MERGE\": "
                    "...}}) or cloud deployment documents");
  check->add_flag("--strict", state->strict, "Warnings fail too");
  check->callback([state, &run] {
    run = [state] { return RunCheck(state->recipe, state->updates, state->strict); };
  });

  CLI::App* render = gg->add_subcommand(
      "render",
      "Print what the nucleus would run for a step, with the configuration after the "
      "given updates");
  RenderOptions& r = state->render;
  render->add_option("recipe", r.recipe_path, "Recipe file")->required();
  render->add_option("--update", r.update_paths, "Configuration update, applied in order");
  render->add_option("--root", r.context.root, "Greengrass root ({kernel:rootPath})")
      ->capture_default_str();
  render->add_option("--arch", r.context.architecture, "aarch64, arm or amd64")
      ->capture_default_str();
  render->add_option("--os", r.context.os, "Platform os")->capture_default_str();
  render->add_option("--thing-name", r.context.thing_name, "{iot:thingName}")
      ->capture_default_str();
  render->add_option("--step", r.step, "Lifecycle step")->capture_default_str();
  render->add_option("--what", r.what, "script, config, modes or paths")
      ->check(CLI::IsMember({"script", "config", "modes", "paths"}))
      ->capture_default_str();
  render->add_flag("--legacy-modes", r.legacy_modes,
                   "modes as older nuclei set them (no group bits)");
  render->callback([state, &run] { run = [state] { return RunRender(state->render); }; });
}

}  // namespace machub::app::greengrass
