// Loading the configuration: the three layers that feed the key table (config_keys.cc):
// TOML file, MACHUB_* environment, command-line flags, with the conversions from each
// source's text or TOML node to a key's value, and the show/keys output.
#include "app/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/config_internal.h"
#include "core/strings.h"

namespace machub::app {
namespace {

using config_internal::CheckStoreId;
using config_internal::Invalid;
using config_internal::Quote;

// --- Conversions from each kind of source to a ConfigValue. ---

Result<double> ParseFloatText(std::string_view text) {
  std::string_view t = core::TrimWhitespace(text);
  if (!t.empty() && t.front() == '+') t.remove_prefix(1);
  double x = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), x);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || !std::isfinite(x)) {
    return Invalid("expected a number, got " + Quote(text));
  }
  return x;
}

// Splits list text: a JSON array of strings when it starts with '[' (Greengrass renders
// `{configuration:/List}` that way), else comma-separated items; blanks are dropped.
Result<std::vector<std::string>> ParseListText(std::string_view text) {
  std::vector<std::string> out;
  std::string_view t = core::TrimWhitespace(text);
  if (!t.empty() && t.front() == '[') {
    nlohmann::json j = nlohmann::json::parse(t, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_array()) return Invalid("expected a JSON array of strings");
    for (const auto& item : j) {
      if (!item.is_string()) return Invalid("expected a JSON array of strings");
      std::string s(core::TrimWhitespace(item.get<std::string>()));
      if (!s.empty()) out.push_back(std::move(s));
    }
    return out;
  }
  while (!t.empty()) {
    size_t comma = t.find(',');
    std::string_view item = core::TrimWhitespace(t.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    t.remove_prefix(comma + 1);
  }
  return out;
}

Result<ConfigValue> ConvertText(const ConfigKey& key, std::string_view text) {
  switch (key.type) {
    case KeyType::kString:
      return ConfigValue(std::string(text));
    case KeyType::kInt: {
      ASSIGN_OR_RETURN(int64_t v, ParseIntegerText(text));
      return ConfigValue(v);
    }
    case KeyType::kFloat: {
      ASSIGN_OR_RETURN(double v, ParseFloatText(text));
      return ConfigValue(v);
    }
    case KeyType::kBool: {
      ASSIGN_OR_RETURN(bool v, ParseBoolText(text));
      return ConfigValue(v);
    }
    case KeyType::kStringList: {
      ASSIGN_OR_RETURN(std::vector<std::string> v, ParseListText(text));
      return ConfigValue(std::move(v));
    }
  }
  return Status(ErrorCode::kInternal, "unknown key type");
}

std::string_view TomlTypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date/time";
  }
}

Status WrongType(const ConfigKey& key, const toml::node& node) {
  return Invalid("expected " + std::string(KeyTypeName(key.type)) + ", got " +
                 std::string(TomlTypeName(node)));
}

Result<ConfigValue> ConvertToml(const ConfigKey& key, const toml::node& node) {
  if (node.is_string()) {
    // Strings are accepted for every type: templating tools quote numbers and booleans.
    return ConvertText(key, node.as_string()->get());
  }
  switch (key.type) {
    case KeyType::kString:
      return WrongType(key, node);
    case KeyType::kInt:
      if (node.is_integer()) return ConfigValue(node.as_integer()->get());
      if (node.is_floating_point()) {
        double d = node.as_floating_point()->get();
        // 2^63 is exactly representable; anything at or above it does not fit int64.
        if (std::isfinite(d) && std::trunc(d) == d && d >= -9223372036854775808.0 &&
            d < 9223372036854775808.0) {
          return ConfigValue(static_cast<int64_t>(d));
        }
        std::ostringstream msg;
        msg << "expected an integer, got " << d;
        return Invalid(msg.str());
      }
      return WrongType(key, node);
    case KeyType::kFloat:
      if (node.is_integer()) return ConfigValue(static_cast<double>(node.as_integer()->get()));
      if (node.is_floating_point()) return ConfigValue(node.as_floating_point()->get());
      return WrongType(key, node);
    case KeyType::kBool:
      if (node.is_boolean()) return ConfigValue(node.as_boolean()->get());
      return WrongType(key, node);
    case KeyType::kStringList: {
      if (!node.is_array()) return WrongType(key, node);
      std::vector<std::string> items;
      for (const toml::node& item : *node.as_array()) {
        if (!item.is_string()) {
          return Invalid("expected a list of strings, found " + std::string(TomlTypeName(item)) +
                         " in it");
        }
        std::string s(core::TrimWhitespace(item.as_string()->get()));
        if (!s.empty()) items.push_back(std::move(s));
      }
      return ConfigValue(std::move(items));
    }
  }
  return Status(ErrorCode::kInternal, "unknown key type");
}

// Applies one converted value and records its source; errors get "key: ... (from source)".
Status Apply(Config& config, const ConfigKey& key, const Result<ConfigValue>& value,
             const std::string& source) {
  Status st = value.ok() ? key.set(config, value.value()) : value.status();
  if (!st.ok()) return Invalid(key.name + ": " + st.message() + " (from " + source + ")");
  config.sources[key.name] = source;
  return Status::Ok();
}

// Flattens nested tables into dotted names so that `[sync] bucket = ...` and
// `sync.bucket = ...` both reach the key "sync.bucket".
Status ApplyTomlTable(Config& config, const toml::table& table, const std::string& prefix,
                      const std::string& source) {
  for (const auto& [k, node] : table) {
    std::string name = prefix + std::string(k.str());
    const ConfigKey* key = FindConfigKey(name);
    if (key == nullptr && node.is_table()) {
      bool is_prefix = false;
      for (const ConfigKey& candidate : ConfigKeys()) {
        if (candidate.name.rfind(name + ".", 0) == 0) is_prefix = true;
      }
      if (is_prefix) {
        RETURN_IF_ERROR(ApplyTomlTable(config, *node.as_table(), name + ".", source));
        continue;
      }
    }
    if (key == nullptr) {
      return Invalid(name + ": unknown key (from " + source +
                     "); `machub config keys` lists the known keys");
    }
    RETURN_IF_ERROR(Apply(config, *key, ConvertToml(*key, node), source));
  }
  return Status::Ok();
}

// toml++ 3.3 reaches __builtin_unreachable (undefined behaviour: a crash or a wrong
// answer) when it asks "is this whitespace?" of some non-ASCII code points (U+00A1..U+0499,
// U+2C7C..U+3075, U+FB1E..U+FEFE): a bare non-ASCII character where a token may start, or
// after a line-ending backslash in a """ string (upstream issues #190, #295; found by
// fuzz/config_fuzz). Our keys and values never need non-ASCII text outside comments and
// strings, so such files are refused before toml++ sees them. Returns "line:column" of the
// first offending byte, or "" when the text is safe. Only exact for text that is valid TOML
// once its non-ASCII bytes are replaced by ASCII (ApplyFile checks that first).
std::string UnsafeNonAsciiPosition(std::string_view text) {
  enum class In { kCode, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral };
  In in = In::kCode;
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool non_ascii = static_cast<unsigned char>(c) >= 0x80;
    if (c == '\n') {
      ++line;
      line_start = i + 1;
      if (in == In::kComment || in == In::kBasic || in == In::kLiteral) in = In::kCode;
      continue;
    }
    switch (in) {
      case In::kCode:
        if (non_ascii) return std::to_string(line) + ":" + std::to_string(i - line_start + 1);
        if (c == '#') in = In::kComment;
        if (c == '"' || c == '\'') {
          const bool triple = text.substr(i, 3) == std::string(3, c);
          in = c == '"' ? (triple ? In::kMultiBasic : In::kBasic)
                        : (triple ? In::kMultiLiteral : In::kLiteral);
          if (triple) i += 2;
        }
        break;
      case In::kComment:
        break;
      case In::kBasic:
        if (c == '\\') {
          ++i;  // an escaped character (a newline here is a syntax error toml++ reports)
        } else if (c == '"') {
          in = In::kCode;
        }
        break;
      case In::kLiteral:
        if (c == '\'') in = In::kCode;
        break;
      case In::kMultiBasic:
        if (non_ascii) return std::to_string(line) + ":" + std::to_string(i - line_start + 1);
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          ++i;
        } else if (text.substr(i, 3) == "\"\"\"") {
          in = In::kCode;
          i += 2;
        }
        break;
      case In::kMultiLiteral:
        if (text.substr(i, 3) == "\'\'\'") {
          in = In::kCode;
          i += 2;
        }
        break;
    }
  }
  return "";
}

Status ApplyFile(Config& config, const std::string& path) {
  std::string source = "config file " + path;
  {
    std::ifstream file(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    // First the structure, with every non-ASCII byte replaced by '!', which TOML accepts
    // only inside strings and comments: a file that fails here would have sent toml++
    // through its error paths (which classify the bytes they skip) with non-ASCII input.
    std::string ascii = text;
    for (char& c : ascii) {
      if (static_cast<unsigned char>(c) >= 0x80) c = '!';
    }
    try {
      (void)toml::parse(ascii, path);
    } catch (const toml::parse_error& e) {
      return Invalid("config file " + path + ":" + std::to_string(e.source().begin.line) + ":" +
                     std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
    }
    const std::string where = UnsafeNonAsciiPosition(text);
    if (!where.empty()) {
      return Invalid("config file " + path + ":" + where +
                     ": non-ASCII characters are allowed only in comments, single-line "
                     "strings and literal strings");
    }
  }
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    std::string message(e.description());
    if (where.line == 0) {
      // toml++ reports unreadable files as a parse error without a position.
      return Invalid("config file " + path + ": " + message);
    }
    return Invalid("config file " + path + ":" + std::to_string(where.line) + ":" +
                   std::to_string(where.column) + ": " + message);
  } catch (const std::exception& e) {
    return Invalid("config file " + path + ": " + e.what());
  }
  return ApplyTomlTable(config, table, "", source);
}

std::string FormatFloat(double x) {
  std::ostringstream out;
  out.precision(17);
  out << x;
  std::string s = out.str();
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";  // stays a TOML float
  return s;
}

std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string FormatValueToml(const ConfigValue& value) {
  struct Visitor {
    std::string operator()(const std::string& s) const { return TomlString(s); }
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return FormatFloat(v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::vector<std::string>& items) const {
      std::string out = "[";
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ", ";
        out += TomlString(items[i]);
      }
      return out + "]";
    }
  };
  return std::visit(Visitor{}, value);
}

}  // namespace

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kString:
      return "string";
    case KeyType::kInt:
      return "integer";
    case KeyType::kFloat:
      return "float";
    case KeyType::kBool:
      return "boolean";
    case KeyType::kStringList:
      return "list of strings";
  }
  return "?";
}

std::string ConfigKey::FlagName() const {
  std::string out = "--";
  for (char c : name) out.push_back(c == '_' || c == '.' ? '-' : c);
  return out;
}

std::string ConfigKey::EnvName() const {
  std::string out = "MACHUB_";
  for (char c : name) {
    if (c == '.' || c == '-') {
      out.push_back('_');
    } else if (c >= 'a' && c <= 'z') {
      out.push_back(static_cast<char>(c - 'a' + 'A'));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<int64_t> ParseIntegerText(std::string_view text) {
  // Exact: digits are combined as integers, never through a double, so that "8080.0" and
  // "1.0E7" become integers and "8080.5" is refused rather than rounded.
  std::string_view t = core::TrimWhitespace(text);
  auto fail = [&]() { return Invalid("expected an integer, got " + Quote(text)); };
  bool negative = false;
  if (!t.empty() && (t.front() == '-' || t.front() == '+')) {
    negative = t.front() == '-';
    t.remove_prefix(1);
  }
  std::string digits;  // integer and fraction digits together
  int64_t exponent = 0;
  size_t i = 0;
  bool any_digit = false;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
    digits.push_back(t[i++]);
    any_digit = true;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      digits.push_back(t[i++]);
      --exponent;
      any_digit = true;
    }
  }
  if (!any_digit) return fail();
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < t.size() && (t[i] == '-' || t[i] == '+')) exp_negative = t[i++] == '-';
    int64_t e = 0;
    size_t exp_start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      if (e > 1000) return fail();
      e = e * 10 + (t[i++] - '0');
    }
    if (i == exp_start) return fail();
    exponent += exp_negative ? -e : e;
  }
  if (i != t.size()) return fail();
  // Drop the fraction digits that the exponent leaves after the point; they must be zero.
  while (exponent < 0) {
    if (digits.empty()) break;
    if (digits.back() != '0') return Invalid("expected an integer, got " + Quote(text));
    digits.pop_back();
    ++exponent;
  }
  size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return int64_t{0};
  digits.erase(0, first);
  if (digits.size() + static_cast<size_t>(exponent) > 19) {
    return Invalid("integer out of range: " + Quote(text));
  }
  // Accumulate as a negative number so INT64_MIN fits.
  int64_t value = 0;
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  auto push = [&](int d) -> bool {
    if (value < (kMin + d) / 10) return false;
    value = value * 10 - d;
    return true;
  };
  for (char c : digits) {
    if (!push(c - '0')) return Invalid("integer out of range: " + Quote(text));
  }
  for (int64_t k = 0; k < exponent; ++k) {
    if (!push(0)) return Invalid("integer out of range: " + Quote(text));
  }
  if (negative) return value;
  if (value == kMin) return Invalid("integer out of range: " + Quote(text));
  return -value;
}

Result<bool> ParseBoolText(std::string_view text) {
  std::string t = core::AsciiLower(core::TrimWhitespace(text));
  if (t == "true" || t == "1" || t == "yes") return true;
  if (t == "false" || t == "0" || t == "no") return false;
  return Invalid("expected true/false/1/0/yes/no, got " + Quote(text));
}

Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view text) {
  std::string_view host;
  std::string_view port;
  bool bracketed = false;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Invalid(Quote(text) + " is not [IPV6]:PORT");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    bracketed = true;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Invalid(Quote(text) + " is not HOST:PORT (e.g. 0.0.0.0:8080)");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Invalid(Quote(text) + ": an IPv6 address needs brackets, e.g. [::1]:8080");
    }
  }
  if (host.empty()) {
    return Invalid(Quote(text) + " has no host (use 0.0.0.0 for all IPv4 interfaces)");
  }
  std::string host_str(host);
  unsigned char buf[sizeof(struct in6_addr)];
  int family = bracketed ? AF_INET6 : AF_INET;
  if (::inet_pton(family, host_str.c_str(), buf) != 1) {
    return Invalid(Quote(host) + " is not an IP" + (bracketed ? "v6" : "v4") +
                   " address (host names are not resolved)");
  }
  if (port.empty() || port.size() > 10 ||
      port.find_first_not_of("0123456789") != std::string_view::npos) {
    return Invalid(Quote(text) + " has no valid port number");
  }
  int64_t p = 0;
  for (char c : port) p = p * 10 + (c - '0');
  if (p > 65535) return Invalid("port " + std::to_string(p) + " out of range");
  return std::make_pair(host_str, static_cast<uint16_t>(p));
}

Result<Config> LoadConfig(const ConfigInputs& inputs) {
  Config config;
  auto getenv = [&](const std::string& name) -> std::optional<std::string> {
    if (inputs.getenv) return inputs.getenv(name);
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };

  std::string file = inputs.config_file;
  if (file.empty()) file = getenv("MACHUB_CONFIG").value_or("");
  if (!file.empty()) RETURN_IF_ERROR(ApplyFile(config, file));

  for (const ConfigKey& key : ConfigKeys()) {
    std::string env_name = key.EnvName();
    std::optional<std::string> v = getenv(env_name);
    if (v && v->empty() && key.name == "store_id") continue;  // empty: not set (below)
    if (v) RETURN_IF_ERROR(Apply(config, key, ConvertText(key, *v), env_name));
  }

  // Flags: collect per key first, so a scalar given twice applies only its last value and
  // a list given several times is one list.
  std::map<std::string, std::vector<std::string>> by_key;
  std::vector<std::string> order;
  for (const auto& [name, text] : inputs.flags) {
    const ConfigKey* key = FindConfigKey(name);
    if (key == nullptr) return Invalid(name + ": unknown key (from the command line)");
    if (by_key.find(name) == by_key.end()) order.push_back(name);
    by_key[name].push_back(text);
  }
  for (const std::string& name : order) {
    const ConfigKey& key = *FindConfigKey(name);
    const std::vector<std::string>& texts = by_key[name];
    std::string source = key.FlagName();
    // An empty store id is "not set": the Greengrass recipe passes --store-id='' by
    // default, so that the thing name below gives each device of a group its own.
    if (name == "store_id" && texts.back().empty()) continue;
    if (key.type == KeyType::kStringList) {
      std::vector<std::string> all;
      Status st;
      for (const std::string& text : texts) {
        auto items = ParseListText(text);
        if (!items.ok()) {
          st = items.status();
          break;
        }
        for (auto& item : *items) all.push_back(std::move(item));
      }
      Result<ConfigValue> value =
          st.ok() ? Result<ConfigValue>(ConfigValue(std::move(all))) : Result<ConfigValue>(st);
      RETURN_IF_ERROR(Apply(config, key, value, source));
    } else if (key.type == KeyType::kBool && texts.back().empty()) {
      RETURN_IF_ERROR(Apply(config, key, ConfigValue(true), source));
    } else {
      RETURN_IF_ERROR(Apply(config, key, ConvertText(key, texts.back()), source));
    }
  }

  auto source_of = [&](const std::string& name) {
    auto it = config.sources.find(name);
    return it == config.sources.end() ? std::string("default") : it->second;
  };
  // Under Greengrass the nucleus sets AWS_IOT_THING_NAME and AWS_REGION for the component:
  // a store id or region that no file, variable or flag set comes from them, so one
  // thing-group deployment gives every device its own identity.
  if (config.sources.find("store_id") == config.sources.end()) {
    if (std::optional<std::string> thing = getenv("AWS_IOT_THING_NAME"); thing && !thing->empty()) {
      if (Status st = CheckStoreId(*thing); !st.ok()) {
        return Invalid(
            "store_id: not configured, and the thing name AWS_IOT_THING_NAME cannot "
            "be a store id (it names S3 keys): " +
            st.message() + "; set store_id for this device");
      }
      config.store_id = *thing;
      config.sources["store_id"] = "AWS_IOT_THING_NAME";
    }
  }
  if (config.sources.find("sync.region") == config.sources.end()) {
    if (std::optional<std::string> region = getenv("AWS_REGION"); region && !region->empty()) {
      config.sync_region = *region;
      config.sources["sync.region"] = "AWS_REGION";
    }
  }
  if (!config.tls_cert.empty() && config.tls_key.empty()) {
    return Invalid("tls_cert: set without tls_key (from " + source_of("tls_cert") + ")");
  }
  if (config.tls_cert.empty() && !config.tls_key.empty()) {
    return Invalid("tls_key: set without tls_cert (from " + source_of("tls_key") + ")");
  }
  if (config.tls_cert.empty() && !config.tls_client_ca.empty()) {
    return Invalid("tls_client_ca: set without tls_cert and tls_key (from " +
                   source_of("tls_client_ca") + ")");
  }
  return config;
}

std::string ConfigKeysMarkdown() {
  const Config defaults;
  std::string out =
      "| Key (TOML) | Flag | Environment | Type | Default | Description |\n"
      "|---|---|---|---|---|---|\n";
  for (const ConfigKey& key : ConfigKeys()) {
    std::string def = FormatValueToml(key.get(defaults));
    std::string help = key.help;
    // A '|' would end the Markdown cell.
    for (size_t p = help.find('|'); p != std::string::npos; p = help.find('|', p + 2)) {
      help.replace(p, 1, "\\|");
    }
    out += "| `" + key.name + "` | `" + key.FlagName() + "` | `" + key.EnvName() + "` | " +
           std::string(KeyTypeName(key.type)) + " | `" + def + "` | " + help + " |\n";
  }
  return out;
}

std::string ConfigToToml(const Config& config) {
  std::string out = "# machub effective configuration (defaults < file < environment < flags)\n";
  for (const ConfigKey& key : ConfigKeys()) {
    ConfigValue value = key.get(config);
    std::string text;
    if (key.secret) {
      bool empty =
          std::holds_alternative<std::string>(value) && std::get<std::string>(value).empty();
      text = empty ? "\"\"" : "\"<redacted>\"";
    } else {
      text = FormatValueToml(value);
    }
    out += key.name + " = " + text;
    auto it = config.sources.find(key.name);
    if (it != config.sources.end()) out += "  # from " + it->second;
    out += "\n";
  }
  return out;
}

}  // namespace machub::app
