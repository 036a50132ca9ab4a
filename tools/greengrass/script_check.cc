// Scripts: POSIX sh checks (bash-isms) and the first word of each command, on the text
// the nucleus hands to `sh -c`.
#include <cctype>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "greengrass/greengrass_check.h"
#include "greengrass/internal.h"

namespace machub::app::greengrass {

using internal::PlaceholderRegex;
using nlohmann::json;

namespace internal {

// --- Scripts -----------------------------------------------------------------------------

const std::regex& PlaceholderRegex() {
  // The nucleus' pattern for {namespace:key}.
  static const std::regex kRe("\\{([.\\w]+):([^:}]+)\\}");
  return kRe;
}

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
      tokens.emplace_back(1, ';');
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      flush();
    } else if (c == '#' && cur.empty()) {
      while (i < script.size() && script[i] != '\n') ++i;
      flush();
      tokens.emplace_back(";");
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

}  // namespace internal

namespace {

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

}  // namespace

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

}  // namespace machub::app::greengrass
