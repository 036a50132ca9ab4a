#pragma once
// Greengrass V2 component recipes: a checker for the mistakes that broke the seed's
// deployment, and a small model of what the nucleus does with a recipe (configuration
// merge, variable interpolation, artifact file modes), for tests and for
// `machub greengrass check|render` and the host tool `machub-greengrass check|render`.
//
// A host-side tool (tools/greengrass): native builds link it into machub when the CMake
// option MACHUB_GREENGRASS_TOOLS is on (the default); the device build turns it off, so
// the device binary carries neither this code nor yaml-cpp. The implementation is split
// by job: document.cc (YAML/JSON loading), recipe_check.cc, update_check.cc,
// script_check.cc (bash-isms), nucleus.cc (the nucleus model), cli.cc (commands).
//
// Facts encoded here (see shared/GREENGRASS.md and the nucleus source):
//   - RecipeFormatVersion is the string '2020-01-25'; ComponentName is reverse DNS and
//     never aws.greengrass.*; ComponentVersion is a semver string.
//   - Artifact Permission defaults are Read OWNER, Execute NONE: an artifact run as a
//     command needs Execute OWNER or ALL, else "Permission denied".
//   - {configuration:/pointer} with no value is left in the command as literal text; a
//     value is inserted as text (an object or array as compact JSON, keys sorted).
//   - RequiresPrivilege belongs inside a step; at lifecycle level it does nothing.
//   - Scripts run as `sh -c` (dash on Raspberry Pi OS): no bash-isms.
//   - Local config updates (greengrass-cli --update-config) are
//     {"<component>": {"MERGE": {...}, "RESET": ["/pointer", ...]}}; anything else
//     "succeeds" and changes nothing. Cloud deployments use lower-case "merge" holding a
//     JSON *string*, and "reset".
//
// Thread-safety: every function is reentrant (no shared state).
// Errors: documents that cannot be read or parsed are kInvalidArgument / kIoError with the
// path in the message; problems found in a readable document are Findings, not Statuses.

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace machub::app::greengrass {

// A recipe or configuration document, YAML or JSON, as JSON values.
struct Document {
  std::string path;  // for messages; "" for in-memory text
  bool yaml = false;
  nlohmann::json root;
  // YAML only: JSON pointers of scalars written without quotes (plain). The nucleus reads
  // YAML with YAML 1.1 rules, so an unquoted 2020-01-25 or 1.0 is not the string it looks
  // like.
  std::set<std::string> plain_scalars;
};

// True when this build can read YAML (yaml-cpp was found at build time).
bool YamlSupported();

// Parses text as YAML (yaml = true) or JSON. YAML plain scalars are resolved like YAML 1.1
// (the nucleus' parser): null/~, true/false/yes/no/on/off, integers, floats; quoted and
// block scalars stay strings. Duplicate mapping keys are an error.
// kInvalidArgument "<path>: <parser message>" on a syntax error.
Result<Document> ParseDocument(std::string_view text, bool yaml, std::string path = "");
// Reads a file; YAML when the name ends in .yaml or .yml, else JSON.
Result<Document> LoadDocument(const std::string& path);

enum class Severity { kError, kWarning };

struct Finding {
  Severity severity = Severity::kError;
  std::string where;    // JSON pointer into the document ("/Manifests/0/Artifacts/0"), or ""
  std::string message;  // one sentence: what is wrong and what to do
  // "<file>: error: <where>: <message>"
  std::string Format(std::string_view file) const;
};

// All problems of a recipe, in document order. Errors: missing required key (the three
// the service needs, plus ComponentPublisher, ComponentDescription and Manifests), unknown
// top-level/manifest/artifact/step keys, wrong RecipeFormatVersion (or unquoted in YAML),
// an aws.greengrass.* name, non-semver ComponentVersion, bad Permission/Unarchive/
// DependencyType values, an artifact run as a command without Execute permission,
// {configuration:/x} without a DefaultConfiguration value (or not a JSON pointer), unknown
// {namespace:key} variables, RequiresPrivilege/Timeout/Skipif at lifecycle level, both Run
// and Startup, bash-isms in a script, no lifecycle at all. Warnings: a name that is not
// reverse DNS, numbers (not strings) in DefaultConfiguration, ComponentVersion unquoted in
// YAML, a DefaultConfiguration key no lifecycle uses, an architecture the nucleus never
// reports, no HARD dependency on aws.greengrass.TokenExchangeService while the component
// talks to S3 (a DefaultConfiguration key names s3 or a bucket).
std::vector<Finding> CheckRecipe(const Document& recipe);

// Problems of a configuration update checked against its recipe. Two shapes are accepted:
//   local  {"<ComponentName>": {"MERGE": {...}, "RESET": ["", "/a", ...]}}
//   cloud  {"components": {"<ComponentName>": {"componentVersion": "...",
//           "configurationUpdate": {"merge": "<JSON object as a string>", "reset": [...]}}}}
//          (the create-deployment input; other top-level keys are allowed)
// Errors: no component wrapper, a name other than the recipe's, lower-case merge/reset in a
// local update (or upper-case in a cloud one), unknown keys, MERGE not an object, cloud
// merge not a string holding a JSON object, RESET/reset not an array of JSON pointers.
// Warnings: MERGE keys absent from DefaultConfiguration, numbers in MERGE, a cloud
// componentVersion other than the recipe's.
std::vector<Finding> CheckConfigUpdate(const Document& recipe, const Document& update);

// Bash-only constructs in a POSIX sh script, one message each ("[[ ]] test (bash)").
// Quoted text and comments are not searched; Greengrass placeholders are masked first.
// Flagged: [[ ]], ==, `function` keyword, arrays, $'...', <<<, source, &> / &>>,
// {a,b} and {1..3} brace expansion, (( )) arithmetic commands, set -o pipefail, let,
// declare/typeset/readarray/mapfile. `local` is accepted (dash has it).
std::vector<std::string> FindBashisms(std::string_view script);

// --- The nucleus model ----------------------------------------------------------------

// One deployment's configuration update for this component (local or cloud shape
// already unwrapped): MERGE value (null when absent) and RESET pointers.
struct ConfigUpdate {
  nlohmann::json merge;
  std::vector<std::string> reset;
};

// Extracts the update for `component` from a local- or cloud-shaped document.
// kInvalidArgument when the document has no valid update for it (run CheckConfigUpdate
// for the details).
Result<ConfigUpdate> ExtractConfigUpdate(const Document& update, const std::string& component);

// The component configuration after a sequence of deployments, as the nucleus computes
// it for each: start from the running configuration, remove the RESET paths ("" = all),
// fill in DefaultConfiguration where no value exists (defaults never replace a value),
// then deep-merge MERGE (objects merge key by key; anything else replaces).
nlohmann::json ResolveConfiguration(const nlohmann::json& running,
                                    const nlohmann::json& default_configuration,
                                    const std::vector<ConfigUpdate>& updates);

// Where the nucleus keeps things, and who the device is.
struct NucleusContext {
  std::string root = "/greengrass/v2";  // {kernel:rootPath}
  std::string os = "linux";
  std::string architecture = "amd64";  // as the nucleus reports it: aarch64, arm, amd64
  std::string thing_name = "machub-test-device";
};

struct ArtifactView {
  std::string uri;
  std::string file_name;  // last segment of the URI
  std::string unarchive = "NONE";
  std::string read = "OWNER";
  std::string execute = "NONE";
  // The mode the nucleus gives the file (and, for ZIP, every unarchived file):
  // owner always reads; Execute OWNER/ALL -> owner executes; current nucleus versions
  // also give the group what the owner has (0550 for Read OWNER + Execute OWNER, 0440 for
  // the default), older ones did not (0500 / 0400). `legacy` selects the older mapping.
  unsigned Mode(bool legacy = false) const;
};

struct StepView {
  std::string script;
  bool requires_privilege = false;
};

// The parts of a recipe that apply on one device.
struct PlatformView {
  std::string component;
  std::string version;
  size_t manifest_index = 0;
  std::vector<ArtifactView> artifacts;
  nlohmann::json lifecycle;  // the selected lifecycle object (steps by name)
};

// Selects the first manifest whose Platform matches (values "*", "/regex/" or exact;
// a missing Platform matches everything) and its lifecycle (the manifest's own, else the
// global one, by Selections when the global one is keyed by selection).
// kNotFound when no manifest matches; kInvalidArgument for a malformed recipe.
Result<PlatformView> SelectPlatform(const Document& recipe, const NucleusContext& context);

// A step ("Install", "Run", ...) of the selected lifecycle, or kNotFound.
Result<StepView> GetStep(const PlatformView& view, const std::string& step);

// Replaces {artifacts:path}, {artifacts:decompressedPath}, {work:path}, {kernel:rootPath},
// {iot:thingName} and {configuration:/pointer} the way the nucleus does; a placeholder
// without a value stays as it is.
std::string Interpolate(std::string_view text, const PlatformView& view,
                        const NucleusContext& context, const nlohmann::json& configuration);

// The text the nucleus inserts for a configuration value: strings as they are, integers
// in decimal, booleans true/false, null "null", objects/arrays as compact JSON.
std::string ConfigurationText(const nlohmann::json& value);

// --- Command line ---------------------------------------------------------------------

// `machub greengrass check RECIPE [CONFIG_UPDATE...] [--strict]`: prints one line per
// finding to stdout and a summary to stderr; returns 0 when no errors (and, with strict,
// no warnings), 1 otherwise, 2 when a file cannot be read or parsed.
int RunCheck(const std::string& recipe_path, const std::vector<std::string>& update_paths,
             bool strict);

// `machub greengrass render RECIPE [--update FILE]... [--root DIR] [--arch ARCH]
//  [--step STEP] [--what script|config|modes|paths]`: prints what the nucleus would run
// (script), the resolved configuration (config, JSON), the artifact modes ("FILE 0550"
// lines) or the folders (paths: artifacts, decompressed, work as KEY=VALUE lines).
struct RenderOptions {
  std::string recipe_path;
  std::vector<std::string> update_paths;
  NucleusContext context;
  std::string step = "Run";
  std::string what = "script";
  bool legacy_modes = false;
};
int RunRender(const RenderOptions& options);

// Adds `check` and `render` to app (the host tool machub-greengrass has them at its top
// level). Same storage and threading rules as AddGreengrassCommand.
void AddGreengrassSubcommands(CLI::App& app, std::function<int()>& run);

// Adds the `greengrass` command with `check` and `render` to app. The chosen subcommand
// stores its action in `run` (call it after a successful parse); option storage lives as
// long as app. Threads: like CLI11, single-threaded.
void AddGreengrassCommand(CLI::App& app, std::function<int()>& run);

}  // namespace machub::app::greengrass
