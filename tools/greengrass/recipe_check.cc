// Recipe checks: every rule of CheckRecipe (see greengrass_check.h).
#include <algorithm>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/strings.h"
#include "greengrass/greengrass_check.h"
#include "greengrass/internal.h"

namespace machub::app::greengrass {

using internal::Child;
using internal::CommandWords;
using internal::EscapeToken;
using internal::Findings;
using internal::IsJsonPointer;
using internal::IsStepName;
using internal::kRecipeFormatVersion;
using internal::kStepOnlyKeys;
using internal::kTokenExchangeService;
using internal::PlaceholderRegex;
using internal::Resolve;
using internal::TypeName;
using nlohmann::json;

namespace {

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

}  // namespace

std::vector<Finding> CheckRecipe(const Document& recipe) { return RecipeChecker(recipe).Run(); }

}  // namespace machub::app::greengrass
