// Configuration-update checks: the local (greengrass-cli) and cloud (create-deployment)
// shapes, checked against the recipe (CheckConfigUpdate).
#include <set>
#include <string>
#include <vector>

#include "core/strings.h"
#include "greengrass/greengrass_check.h"
#include "greengrass/internal.h"

namespace machub::app::greengrass {

using internal::Child;
using internal::Findings;
using internal::IsJsonPointer;
using internal::Resolve;
using internal::TypeName;
using nlohmann::json;

namespace {

// Keys whose value differs from store to store: a deployment to a thing group hands the
// same value to every device in the group (issue #11: every store would upload as S042
// with the same tokens).
constexpr const char* kPerStoreKeys[] = {"store_id", "terminal_tokens", "manager_tokens",
                                         "tls_hosts"};

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
    if (root.contains("targetArn") && root["targetArn"].is_string()) {
      const std::string arn = root["targetArn"];
      group_target_ = arn.find(":thinggroup/") != std::string::npos;
    }
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
            if (group_target_) CheckPerStoreKeys(parsed, op_pointer);
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

  void CheckPerStoreKeys(const json& merge, const std::string& pointer) {
    for (const char* key : kPerStoreKeys) {
      if (!merge.contains(key)) continue;
      f_.Error(Child(pointer, key),
               std::string("\"") + key +
                   "\" in a deployment to a thing group gives every device of the group the "
                   "same value: leave it out (store_id defaults to each device's thing name, "
                   "AWS_IOT_THING_NAME; tokens come from `machub token create` on the device) "
                   "or deploy it to one thing (targetArn ...:thing/NAME)");
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
  bool group_target_ = false;  // targetArn names a thing group
  json defaults_ = json::object();
  Findings f_;
};

}  // namespace

std::vector<Finding> CheckConfigUpdate(const Document& recipe, const Document& update) {
  return UpdateChecker(recipe, update).Run();
}

}  // namespace machub::app::greengrass
