// The nucleus model: configuration merge and reset, platform selection, artifact modes,
// variable interpolation, as the Greengrass nucleus does them.
#include <charconv>
#include <cmath>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "greengrass/greengrass_check.h"
#include "greengrass/internal.h"

namespace machub::app::greengrass {

using internal::IsJsonPointer;
using internal::IsStepName;
using internal::PlaceholderRegex;
using internal::Resolve;
using nlohmann::json;

namespace {

// Deep merge; `fill_only`: keep existing values (defaults never replace).
void MergeInto(json& target, const json& source, bool fill_only) {
  if (!target.is_object() || !source.is_object()) {
    if (!fill_only) target = source;
    return;
  }
  for (const auto& [k, v] : source.items()) {
    if (target.contains(k) && target[k].is_object() && v.is_object()) {
      MergeInto(target[k], v, fill_only);
    } else if (!target.contains(k) || !fill_only) {
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

}  // namespace

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

}  // namespace machub::app::greengrass
