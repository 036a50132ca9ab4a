// The command line: `check` and `render`, shared by `machub greengrass` and the host tool
// machub-greengrass.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "greengrass/greengrass_check.h"

namespace machub::app::greengrass {

using nlohmann::json;

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

void AddGreengrassSubcommands(CLI::App& gg, std::function<int()>& run) {
  struct State {
    std::string recipe;
    std::vector<std::string> updates;
    bool strict = false;
    RenderOptions render;
  };
  auto state = std::make_shared<State>();

  CLI::App* check = gg.add_subcommand(
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

  CLI::App* render = gg.add_subcommand(
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

void AddGreengrassCommand(CLI::App& app, std::function<int()>& run) {
  CLI::App* gg = app.add_subcommand("greengrass", "Check or render a Greengrass V2 recipe");
  gg->require_subcommand(1);
  AddGreengrassSubcommands(*gg, run);
}

}  // namespace machub::app::greengrass
