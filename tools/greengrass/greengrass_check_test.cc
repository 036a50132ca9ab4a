#include "greengrass/greengrass_check.h"

#include <gtest/gtest.h>

#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "app/config.h"

namespace machub::app::greengrass {
namespace {

using nlohmann::json;

// A clean recipe: every check passes. Each case below breaks one thing (and a near miss
// of the same thing must stay clean).
json BaseRecipe() {
  return json::parse(R"({
    "RecipeFormatVersion": "2020-01-25",
    "ComponentName": "com.example.Hub",
    "ComponentVersion": "1.0.0",
    "ComponentPublisher": "Example",
    "ComponentDescription": "A test hub",
    "ComponentDependencies": {
      "aws.greengrass.TokenExchangeService": {"VersionRequirement": ">=2.0.0", "DependencyType": "HARD"}
    },
    "ComponentConfiguration": {"DefaultConfiguration": {
      "port": "8080", "s3_bucket": "", "nested": {"a": "1"}, "tokens": []
    }},
    "Manifests": [
      {"Platform": {"os": "linux", "architecture": "aarch64"},
       "Artifacts": [{"URI": "s3://b/hub/1.0.0/linux-aarch64/hub",
                      "Permission": {"Read": "OWNER", "Execute": "OWNER"}}]},
      {"Platform": {"os": "linux", "architecture": "amd64"},
       "Artifacts": [{"URI": "s3://b/hub/1.0.0/linux-amd64/hub",
                      "Permission": {"Read": "OWNER", "Execute": "OWNER"}}]}
    ],
    "Lifecycle": {"Run": {"Script":
      "exec {artifacts:path}/hub --port '{configuration:/port}' --bucket '{configuration:/s3_bucket}' --a '{configuration:/nested/a}' --tokens '{configuration:/tokens}' --data '{work:path}/data'"}}
  })");
}

Document Doc(json root) {
  Document d;
  d.root = std::move(root);
  return d;
}

std::string Dump(const std::vector<Finding>& findings) {
  std::string out;
  for (const Finding& f : findings) out += f.Format("recipe") + "\n";
  return out;
}

bool Has(const std::vector<Finding>& findings, Severity severity, const std::string& text) {
  for (const Finding& f : findings) {
    if (f.severity == severity && f.message.find(text) != std::string::npos) return true;
  }
  return false;
}

void SetRun(json& r, const std::string& script) { r["Lifecycle"]["Run"]["Script"] = script; }

TEST(GreengrassCheckTest, BaseRecipeIsClean) {
  auto findings = CheckRecipe(Doc(BaseRecipe()));
  EXPECT_TRUE(findings.empty()) << Dump(findings);
}

struct RecipeCase {
  const char* name;
  std::function<void(json&)> fail;  // introduces the problem
  Severity severity;
  const char* expected;             // part of the message
  std::function<void(json&)> pass;  // a near miss that must stay clean
};

std::vector<RecipeCase> RecipeCases() {
  std::vector<RecipeCase> cases;
  for (const char* key : {"RecipeFormatVersion", "ComponentName", "ComponentVersion",
                          "ComponentPublisher", "ComponentDescription", "Manifests"}) {
    cases.push_back({key, [key](json& r) { r.erase(key); }, Severity::kError,
                     "missing required key", [](json&) {}});
  }
  cases.push_back({"format_version", [](json& r) { r["RecipeFormatVersion"] = "2021-01-25"; },
                   Severity::kError, "RecipeFormatVersion must be the string '2020-01-25'",
                   [](json& r) { r["RecipeFormatVersion"] = "2020-01-25"; }});
  cases.push_back({"format_version_number", [](json& r) { r["RecipeFormatVersion"] = 2020; },
                   Severity::kError, "RecipeFormatVersion must be", [](json&) {}});
  cases.push_back({"unknown_top_key", [](json& r) { r["componentName2"] = "x"; }, Severity::kError,
                   "unknown top-level key", [](json&) {}});
  cases.push_back({"aws_prefix", [](json& r) { r["ComponentName"] = "aws.greengrass.Hub"; },
                   Severity::kError, "reserved aws.greengrass. prefix",
                   [](json& r) { r["ComponentName"] = "com.example.aws.greengrass.Hub"; }});
  cases.push_back({"not_reverse_dns", [](json& r) { r["ComponentName"] = "Hub"; },
                   Severity::kWarning, "not reverse DNS",
                   [](json& r) { r["ComponentName"] = "org.example.Hub"; }});
  cases.push_back({"semver", [](json& r) { r["ComponentVersion"] = "1.0"; }, Severity::kError,
                   "semantic version",
                   [](json& r) { r["ComponentVersion"] = "1.0.0-rc.1+build.5"; }});
  cases.push_back({"semver_number", [](json& r) { r["ComponentVersion"] = 1.0; }, Severity::kError,
                   "semantic version", [](json&) {}});
  cases.push_back(
      {"execute_missing",
       [](json& r) { r["Manifests"][0]["Artifacts"][0]["Permission"].erase("Execute"); },
       Severity::kError, "runs artifact hub as a command",
       // Run through an interpreter, an artifact needs only Read.
       [](json& r) {
         r["Manifests"][0]["Artifacts"][0]["Permission"].erase("Execute");
         r["Manifests"][1]["Artifacts"][0]["Permission"].erase("Execute");
         SetRun(r,
                "python3 {artifacts:path}/hub '{configuration:/port}' '{configuration:/s3_bucket}' "
                "'{configuration:/nested/a}' '{configuration:/tokens}'");
       }});
  cases.push_back(
      {"execute_none_quoted_path",
       [](json& r) {
         r["Manifests"][1]["Artifacts"][0]["Permission"]["Execute"] = "NONE";
         SetRun(
             r,
             "cd /tmp && exec \"{artifacts:path}/hub\" '{configuration:/port}' "
             "'{configuration:/s3_bucket}' '{configuration:/nested/a}' '{configuration:/tokens}'");
       },
       Severity::kError, "Permission.Execute is NONE",
       [](json& r) { r["Manifests"][1]["Artifacts"][0]["Permission"]["Execute"] = "ALL"; }});
  cases.push_back(
      {"execute_default_zip",
       [](json& r) {
         json& a = r["Manifests"][0]["Artifacts"][0];
         a = {{"URI", "s3://b/hub.zip"}, {"Unarchive", "ZIP"}};
         SetRun(
             r,
             "{artifacts:decompressedPath}/hub/bin/hub '{configuration:/port}' "
             "'{configuration:/s3_bucket}' '{configuration:/nested/a}' '{configuration:/tokens}'");
       },
       Severity::kError, "runs artifact hub.zip as a command",
       [](json& r) {
         json& a = r["Manifests"][0]["Artifacts"][0];
         a = {{"URI", "s3://b/hub.zip"},
              {"Unarchive", "ZIP"},
              {"Permission", {{"Read", "OWNER"}, {"Execute", "OWNER"}}}};
         SetRun(
             r,
             "{artifacts:decompressedPath}/hub/bin/hub '{configuration:/port}' "
             "'{configuration:/s3_bucket}' '{configuration:/nested/a}' '{configuration:/tokens}'");
       }});
  cases.push_back(
      {"bad_permission_value",
       [](json& r) { r["Manifests"][0]["Artifacts"][0]["Permission"]["Execute"] = "YES"; },
       Severity::kError, "Execute must be NONE, OWNER or ALL",
       [](json& r) { r["Manifests"][0]["Artifacts"][0]["Permission"]["Execute"] = "ALL"; }});
  cases.push_back({"lowercase_permission_key",
                   [](json& r) {
                     r["Manifests"][0]["Artifacts"][0]["Permission"] = {{"read", "OWNER"},
                                                                        {"execute", "OWNER"}};
                   },
                   Severity::kError, "unknown Permission key", [](json&) {}});
  cases.push_back({"bad_unarchive",
                   [](json& r) { r["Manifests"][0]["Artifacts"][0]["Unarchive"] = "TAR"; },
                   Severity::kError, "Unarchive must be NONE or ZIP",
                   [](json& r) { r["Manifests"][0]["Artifacts"][0]["Unarchive"] = "NONE"; }});
  cases.push_back({"config_ref_missing",
                   [](json& r) {
                     r["Lifecycle"]["Run"]["Script"] =
                         r["Lifecycle"]["Run"]["Script"].get<std::string>() +
                         " --x '{configuration:/nested/b}'";
                   },
                   Severity::kError, "has no value in DefaultConfiguration",
                   [](json& r) {
                     r["ComponentConfiguration"]["DefaultConfiguration"]["nested"]["b"] = "";
                     r["Lifecycle"]["Run"]["Script"] =
                         r["Lifecycle"]["Run"]["Script"].get<std::string>() +
                         " --x '{configuration:/nested/b}'";
                   }});
  cases.push_back({"config_ref_in_setenv",
                   [](json& r) {
                     r["Lifecycle"]["Setenv"] = {{"X", "{configuration:/nope}"}};
                   },
                   Severity::kError, "{configuration:/nope} has no value",
                   [](json& r) {
                     r["Lifecycle"]["Setenv"] = {{"X", "{configuration:/port}"}};
                   }});
  cases.push_back({"config_ref_not_pointer",
                   [](json& r) {
                     r["Lifecycle"]["Run"]["Script"] =
                         r["Lifecycle"]["Run"]["Script"].get<std::string>() +
                         " {configuration:port}";
                   },
                   Severity::kError, "is not a JSON pointer", [](json&) {}});
  cases.push_back({"unknown_variable",
                   [](json& r) {
                     r["Lifecycle"]["Run"]["Script"] =
                         r["Lifecycle"]["Run"]["Script"].get<std::string>() + " {work:dir}";
                   },
                   Severity::kError, "unknown variable {work:dir}",
                   [](json& r) {
                     r["Lifecycle"]["Run"]["Script"] =
                         r["Lifecycle"]["Run"]["Script"].get<std::string>() +
                         " {kernel:rootPath} {iot:thingName}";
                   }});
  cases.push_back({"requires_privilege_lifecycle_level",
                   [](json& r) { r["Lifecycle"]["RequiresPrivilege"] = true; }, Severity::kError,
                   "RequiresPrivilege at lifecycle level has no effect",
                   [](json& r) { r["Lifecycle"]["Run"]["RequiresPrivilege"] = true; }});
  cases.push_back({"run_and_startup", [](json& r) { r["Lifecycle"]["Startup"] = "true"; },
                   Severity::kError, "Run and Startup are alternatives",
                   [](json& r) { r["Lifecycle"]["Shutdown"] = "true"; }});
  cases.push_back({"no_lifecycle", [](json& r) { r.erase("Lifecycle"); }, Severity::kError,
                   "no Lifecycle",
                   // A manifest-level lifecycle counts.
                   [](json& r) {
                     json lc = r["Lifecycle"];
                     r.erase("Lifecycle");
                     r["Manifests"][0]["Lifecycle"] = lc;
                     r["Manifests"][1]["Lifecycle"] = lc;
                   }});
  cases.push_back(
      {"number_default",
       [](json& r) { r["ComponentConfiguration"]["DefaultConfiguration"]["port"] = 8080; },
       Severity::kWarning, "number 8080 in DefaultConfiguration",
       [](json& r) { r["ComponentConfiguration"]["DefaultConfiguration"]["port"] = "8080"; }});
  cases.push_back(
      {"nested_number_default",
       [](json& r) { r["ComponentConfiguration"]["DefaultConfiguration"]["nested"]["a"] = 1.5; },
       Severity::kWarning, "number 1.5", [](json&) {}});
  cases.push_back({"tes_missing", [](json& r) { r.erase("ComponentDependencies"); },
                   Severity::kWarning, "TokenExchangeService",
                   // No S3 in the configuration: no credentials needed.
                   [](json& r) {
                     r.erase("ComponentDependencies");
                     r["ComponentConfiguration"]["DefaultConfiguration"].erase("s3_bucket");
                     SetRun(r,
                            "exec {artifacts:path}/hub '{configuration:/port}' "
                            "'{configuration:/nested/a}' '{configuration:/tokens}'");
                   }});
  cases.push_back(
      {"tes_soft",
       [](json& r) {
         r["ComponentDependencies"]["aws.greengrass.TokenExchangeService"]["DependencyType"] =
             "SOFT";
       },
       Severity::kWarning, "no HARD dependency", [](json&) {}});
  cases.push_back(
      {"bad_dependency_type",
       [](json& r) {
         r["ComponentDependencies"]["aws.greengrass.TokenExchangeService"]["DependencyType"] =
             "hard";
       },
       Severity::kError, "DependencyType must be HARD or SOFT", [](json&) {}});
  cases.push_back(
      {"unused_default",
       [](json& r) { r["ComponentConfiguration"]["DefaultConfiguration"]["extra"] = "1"; },
       Severity::kWarning, "\"extra\" is never used",
       [](json& r) {
         r["ComponentConfiguration"]["DefaultConfiguration"]["extra"] = "1";
         r["Lifecycle"]["Run"]["Script"] = r["Lifecycle"]["Run"]["Script"].get<std::string>() +
                                           " --extra='{configuration:/extra}'";
       }});
  return cases;
}

TEST(GreengrassCheckTest, EveryRecipeProblemFailsAndItsNearMissPasses) {
  for (const RecipeCase& c : RecipeCases()) {
    SCOPED_TRACE(c.name);
    json bad = BaseRecipe();
    c.fail(bad);
    auto findings = CheckRecipe(Doc(bad));
    EXPECT_TRUE(Has(findings, c.severity, c.expected)) << "expected \"" << c.expected << "\" in:\n"
                                                       << Dump(findings);
    json good = BaseRecipe();
    c.pass(good);
    auto clean = CheckRecipe(Doc(good));
    EXPECT_TRUE(clean.empty()) << Dump(clean);
  }
}

// --- bash-isms ---

struct ScriptCase {
  const char* bad;
  const char* expected;
  const char* good;
};

TEST(GreengrassCheckTest, BashismsAreFlaggedAndPosixEquivalentsPass) {
  const ScriptCase cases[] = {
      {"if [[ -f x ]]; then echo y; fi", "[[ ]]", "if [ -f x ]; then echo y; fi"},
      {"[ \"$a\" == b ] && echo y", "==", "[ \"$a\" = b ] && echo \"a==b\""},
      {"function f { :; }\nf", "function keyword", "f() { :; }\nf"},
      {"a=(1 2)\necho $a", "array assignment", "a=\"1 2\"\necho $a"},
      {"echo ${a[0]}", "array expansion", "echo ${a}"},
      {"printf $'a\\tb'", "$'...'", "printf 'a\\tb' '$x'"},
      {"cat <<< x", "here-string", "echo x | cat"},
      {"source ./env.sh", "source", ". ./env.sh"},
      {"run &> /dev/null", "&>", "run >/dev/null 2>&1"},
      {"cp f{,.bak}", "brace expansion {a,b}", "cp f f.bak; { a; b; }; echo ${x:-a,b}"},
      {"for i in {1..3}; do :; done", "{1..3}", "for i in 1 2 3; do :; done"},
      {"(( i++ ))", "(( ))", "i=$((i + 1))"},
      {"set -eo pipefail", "pipefail", "set -eu"},
      {"declare -a x", "bash builtin", "f() { local x=1; }"},
      {"let i=i+1", "bash builtin", "i=$((i+1)) # let i=i+1 in a comment"},
  };
  for (const ScriptCase& c : cases) {
    SCOPED_TRACE(c.bad);
    auto problems = FindBashisms(c.bad);
    bool found = false;
    for (const std::string& p : problems) found = found || p.find(c.expected) != std::string::npos;
    EXPECT_TRUE(found) << "expected " << c.expected << ", got " << problems.size() << " problems";
    auto none = FindBashisms(c.good);
    EXPECT_TRUE(none.empty()) << c.good << " -> " << (none.empty() ? "" : none[0]);
    // And inside a recipe, as an error at the script.
    json r = BaseRecipe();
    r["Lifecycle"]["Install"] = c.bad;
    EXPECT_TRUE(Has(CheckRecipe(Doc(r)), Severity::kError, c.expected));
  }
  // Greengrass placeholders are not brace expansions.
  EXPECT_TRUE(FindBashisms("exec {artifacts:path}/x --a='{configuration:/a,b}'").empty());
}

// --- configuration updates ---

struct UpdateCase {
  const char* name;
  const char* bad;
  Severity severity;
  const char* expected;
  const char* good;
};

TEST(GreengrassCheckTest, EveryUpdateProblemFailsAndItsNearMissPasses) {
  const UpdateCase cases[] = {
      {"lower_case_merge", R"({"com.example.Hub": {"merge": {"port": "9090"}}})", Severity::kError,
       "lower-case \"merge\"", R"({"com.example.Hub": {"MERGE": {"port": "9090"}}})"},
      {"lower_case_reset", R"({"com.example.Hub": {"reset": ["/port"]}})", Severity::kError,
       "lower-case \"reset\"", R"({"com.example.Hub": {"RESET": ["/port"]}})"},
      {"missing_wrapper", R"({"MERGE": {"port": "9090"}})", Severity::kError,
       "needs the component name as wrapper",
       R"({"com.example.Hub": {"MERGE": {"port": "9090"}}})"},
      {"unknown_key", R"({"com.example.Hub": {"MERGE": {"port": "1"}, "REPLACE": {}}})",
       Severity::kError, "unknown key \"REPLACE\"",
       R"({"com.example.Hub": {"MERGE": {"port": "1"}, "RESET": []}})"},
      {"merge_not_object", R"({"com.example.Hub": {"MERGE": "{\"port\": \"1\"}"}})",
       Severity::kError, "MERGE must be an object",
       R"({"com.example.Hub": {"MERGE": {"port": "1"}}})"},
      {"reset_not_array", R"({"com.example.Hub": {"RESET": "/port"}})", Severity::kError,
       "must be an array of JSON pointers", R"({"com.example.Hub": {"RESET": ["/port"]}})"},
      {"reset_not_pointer", R"({"com.example.Hub": {"RESET": ["port"]}})", Severity::kError,
       "JSON pointers", R"({"com.example.Hub": {"RESET": [""]}})"},
      {"component_mismatch", R"({"com.example.Other": {"MERGE": {"port": "1"}}})", Severity::kError,
       "does not match the recipe's ComponentName",
       R"({"com.example.Hub": {"MERGE": {"nested": {"a": "2"}}}})"},
      {"not_object", R"(["com.example.Hub"])", Severity::kError, "must be a JSON object",
       R"({"com.example.Hub": {"RESET": ["/nested/a"]}})"},
      {"unknown_config_key", R"({"com.example.Hub": {"MERGE": {"prot": "1"}}})", Severity::kWarning,
       "not a key of the recipe's DefaultConfiguration",
       R"({"com.example.Hub": {"MERGE": {"port": "1"}}})"},
      {"number_in_merge", R"({"com.example.Hub": {"MERGE": {"port": 9090}}})", Severity::kWarning,
       "write it as a string", R"({"com.example.Hub": {"MERGE": {"port": "9090"}}})"},
      {"cloud_merge_object",
       R"({"components": {"com.example.Hub": {"configurationUpdate": {"merge": {"port": "1"}}}}})",
       Severity::kError, "as a string",
       R"({"components": {"com.example.Hub": {"configurationUpdate": {"merge": "{\"port\":\"1\"}"}}}})"},
      {"cloud_upper_case",
       R"({"components": {"com.example.Hub": {"configurationUpdate": {"MERGE": "{}"}}}})",
       Severity::kError, "upper-case \"MERGE\"",
       R"({"components": {"com.example.Hub": {"configurationUpdate": {"merge": "{}", "reset": [""]}}}})"},
      {"cloud_merge_not_object",
       R"({"components": {"com.example.Hub": {"configurationUpdate": {"merge": "[1]"}}}})",
       Severity::kError, "merge does not hold a JSON object",
       R"({"components": {"com.example.Hub": {"configurationUpdate": {"merge": "{}"}}}})"},
      {"cloud_no_entry",
       R"({"components": {"aws.greengrass.Nucleus": {"componentVersion": "2.12.0"}}})",
       Severity::kError, "no entry for the recipe's component",
       R"({"components": {"aws.greengrass.Nucleus": {"componentVersion": "2.12.0"},
                          "com.example.Hub": {"componentVersion": "1.0.0"}}})"},
      {"cloud_version_mismatch",
       R"({"components": {"com.example.Hub": {"componentVersion": "2.0.0"}}})", Severity::kWarning,
       "is not the recipe's ComponentVersion",
       R"({"components": {"com.example.Hub": {"componentVersion": "1.0.0"}}})"},
  };
  Document recipe = Doc(BaseRecipe());
  for (const UpdateCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto bad = ParseDocument(c.bad, /*yaml=*/false, "update.json");
    ASSERT_TRUE(bad.ok()) << bad.status().message();
    auto findings = CheckConfigUpdate(recipe, *bad);
    EXPECT_TRUE(Has(findings, c.severity, c.expected)) << Dump(findings);
    auto good = ParseDocument(c.good, /*yaml=*/false, "update.json");
    ASSERT_TRUE(good.ok()) << good.status().message();
    auto clean = CheckConfigUpdate(recipe, *good);
    EXPECT_TRUE(clean.empty()) << Dump(clean);
  }
}

// A deployment to a thing group must not carry per-store values (issue #11): every device
// in the group would get the same store id and tokens. To one thing it is fine.
TEST(GreengrassCheckTest, PerStoreKeysInAThingGroupDeploymentAreRefused) {
  json recipe_json = BaseRecipe();
  json& defaults = recipe_json["ComponentConfiguration"]["DefaultConfiguration"];
  defaults["store_id"] = "S001";
  defaults["terminal_tokens"] = json::array();
  defaults["manager_tokens"] = json::array();
  defaults["tls_hosts"] = "";
  Document recipe = Doc(recipe_json);
  auto deployment = [](const std::string& target, const json& merge) {
    json d = {{"targetArn", target},
              {"components",
               {{"com.example.Hub", {{"configurationUpdate", {{"merge", merge.dump()}}}}}}}};
    auto doc = ParseDocument(d.dump(), /*yaml=*/false, "deployment.json");
    EXPECT_TRUE(doc.ok());
    return *doc;
  };
  const std::string group = "arn:aws:iot:eu-west-1:123456789012:thinggroup/machub-stores";
  const std::string thing = "arn:aws:iot:eu-west-1:123456789012:thing/store-042-hub";
  for (const char* key : {"store_id", "terminal_tokens", "manager_tokens", "tls_hosts"}) {
    SCOPED_TRACE(key);
    json merge = {{"port", "8080"}};
    merge[key] = std::string(key) == "store_id" || std::string(key) == "tls_hosts"
                     ? json("S042")
                     : json::array({"T01:" + std::string(64, 'a')});
    auto findings = CheckConfigUpdate(recipe, deployment(group, merge));
    EXPECT_TRUE(Has(findings, Severity::kError, "gives every device of the group the same value"))
        << Dump(findings);
    // The same update to one thing: clean.
    auto clean = CheckConfigUpdate(recipe, deployment(thing, merge));
    EXPECT_TRUE(clean.empty()) << Dump(clean);
  }
  // Store-wide keys are fine for a group.
  auto shared = CheckConfigUpdate(recipe, deployment(group, json{{"port", "8080"}}));
  EXPECT_TRUE(shared.empty()) << Dump(shared);
}

// --- YAML specifics ---

TEST(GreengrassCheckTest, YamlQuotingMatters) {
  if (!YamlSupported()) GTEST_SKIP() << "built without yaml-cpp (install libyaml-cpp-dev)";
  std::string base = BaseRecipe().dump();  // JSON is YAML
  auto json_as_yaml = ParseDocument(base, /*yaml=*/true);
  ASSERT_TRUE(json_as_yaml.ok()) << json_as_yaml.status().message();
  EXPECT_TRUE(CheckRecipe(*json_as_yaml).empty()) << Dump(CheckRecipe(*json_as_yaml));

  std::string unquoted = std::regex_replace(base, std::regex("\"2020-01-25\""), "2020-01-25");
  auto doc = ParseDocument(unquoted, /*yaml=*/true);
  ASSERT_TRUE(doc.ok());
  EXPECT_TRUE(Has(CheckRecipe(*doc), Severity::kError, "quote RecipeFormatVersion"));

  std::string version = std::regex_replace(base, std::regex("\"1\\.0\\.0\""), "1.0.0");
  doc = ParseDocument(version, /*yaml=*/true);
  ASSERT_TRUE(doc.ok());
  EXPECT_TRUE(Has(CheckRecipe(*doc), Severity::kWarning, "quote ComponentVersion"));

  std::string number = std::regex_replace(base, std::regex("\"8080\""), "8080");
  doc = ParseDocument(number, /*yaml=*/true);
  ASSERT_TRUE(doc.ok());
  EXPECT_TRUE(Has(CheckRecipe(*doc), Severity::kWarning, "number 8080"));

  // YAML 1.1 booleans and floats, as the nucleus reads them.
  auto scalars = ParseDocument("a: yes\nb: 'yes'\nc: 1.0\nd: ~\ne: 0x10\nf: 1_000\n", true);
  ASSERT_TRUE(scalars.ok());
  EXPECT_EQ(scalars->root["a"], true);
  EXPECT_EQ(scalars->root["b"], "yes");
  EXPECT_EQ(scalars->root["c"], 1.0);
  EXPECT_TRUE(scalars->root["d"].is_null());
  EXPECT_EQ(scalars->root["e"], "0x10");
  EXPECT_EQ(scalars->root["f"], 1000);

  auto dup = ParseDocument("a: 1\na: 2\n", true, "dup.yaml");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate key"), std::string::npos);
  auto broken = ParseDocument("a: [1, 2\n", true, "broken.yaml");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("broken.yaml"), std::string::npos);
}

TEST(GreengrassCheckTest, JsonSyntaxErrorNamesTheFile) {
  auto doc = ParseDocument("{\"a\": ", false, "x.json");
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("x.json"), std::string::npos);
}

// --- the nucleus model ---

TEST(GreengrassModelTest, ConfigurationMergeResetAndDefaults) {
  json defaults = {{"port", "8080"}, {"nested", {{"a", "1"}, {"b", "2"}}}, {"list", {"x", "y"}}};
  EXPECT_EQ(ResolveConfiguration(json::object(), defaults, {}), defaults);

  ConfigUpdate merge{json{{"port", "9090"}, {"nested", {{"a", "5"}}}, {"list", {"z"}}}, {}};
  json after = ResolveConfiguration(json::object(), defaults, {merge});
  EXPECT_EQ(after["port"], "9090");
  EXPECT_EQ(after["nested"]["a"], "5");
  EXPECT_EQ(after["nested"]["b"], "2");          // objects merge key by key
  EXPECT_EQ(after["list"], json::array({"z"}));  // lists are replaced

  // A new recipe version's defaults do not replace what the device already has...
  json new_defaults = defaults;
  new_defaults["port"] = "7070";
  new_defaults["added"] = "yes";
  json upgraded = ResolveConfiguration(after, new_defaults, {});
  EXPECT_EQ(upgraded["port"], "9090");
  EXPECT_EQ(upgraded["added"], "yes");  // ...they only fill in missing keys
  // ...unless RESET says so: one key, or everything with "".
  json one = ResolveConfiguration(after, new_defaults, {ConfigUpdate{json(), {"/port"}}});
  EXPECT_EQ(one["port"], "7070");
  EXPECT_EQ(one["nested"]["a"], "5");
  json all = ResolveConfiguration(after, new_defaults, {ConfigUpdate{json(), {""}}});
  EXPECT_EQ(all, new_defaults);
  // RESET happens before MERGE within one deployment.
  json both = ResolveConfiguration(after, new_defaults, {ConfigUpdate{json{{"port", "1"}}, {""}}});
  EXPECT_EQ(both["port"], "1");
  EXPECT_EQ(both["nested"]["a"], "1");
}

TEST(GreengrassModelTest, InterpolationLikeTheNucleus) {
  auto view = SelectPlatform(Doc(BaseRecipe()), NucleusContext{"/gg", "linux", "aarch64", "t1"});
  ASSERT_TRUE(view.ok()) << view.status().message();
  json config = {{"s", "text"},
                 {"i", 8080},
                 {"f", 8080.0},
                 {"big", 1e7},
                 {"b", true},
                 {"n", nullptr},
                 {"list", {"T01:aa", "T02:bb"}},
                 {"obj", {{"z", "1"}, {"a", "2"}}}};
  NucleusContext ctx{"/gg", "linux", "aarch64", "thing-7"};
  EXPECT_EQ(Interpolate("{artifacts:path}/hub", *view, ctx, config),
            "/gg/packages/artifacts/com.example.Hub/1.0.0/hub");
  EXPECT_EQ(Interpolate("{artifacts:decompressedPath}", *view, ctx, config),
            "/gg/packages/artifacts-unarchived/com.example.Hub/1.0.0");
  EXPECT_EQ(Interpolate("{work:path}/data {kernel:rootPath} {iot:thingName}", *view, ctx, config),
            "/gg/work/com.example.Hub/data /gg thing-7");
  EXPECT_EQ(Interpolate("{configuration:/s}|{configuration:/i}|{configuration:/f}|"
                        "{configuration:/big}|{configuration:/b}|{configuration:/n}",
                        *view, ctx, config),
            "text|8080|8080.0|1.0E7|true|null");
  EXPECT_EQ(Interpolate("'{configuration:/list}' {configuration:/obj}", *view, ctx, config),
            "'[\"T01:aa\",\"T02:bb\"]' {\"a\":\"2\",\"z\":\"1\"}");
  // Missing values and unknown variables stay as they are.
  EXPECT_EQ(Interpolate("{configuration:/missing} {foo:bar}", *view, ctx, config),
            "{configuration:/missing} {foo:bar}");
}

TEST(GreengrassModelTest, PlatformSelectionFirstMatchWins) {
  json r = BaseRecipe();
  auto pick = [&](const std::string& arch) {
    return SelectPlatform(Doc(r), NucleusContext{"/gg", "linux", arch, "t"});
  };
  ASSERT_TRUE(pick("aarch64").ok());
  EXPECT_EQ(pick("aarch64")->manifest_index, 0u);
  EXPECT_EQ(pick("amd64")->manifest_index, 1u);
  EXPECT_EQ(pick("amd64")->artifacts[0].uri, "s3://b/hub/1.0.0/linux-amd64/hub");
  EXPECT_EQ(pick("arm").status().code(), ErrorCode::kNotFound);
  r["Manifests"].push_back({{"Platform", {{"os", "linux"}, {"architecture", "/arm.*/"}}}});
  EXPECT_EQ(pick("arm")->manifest_index, 2u);
  r["Manifests"][0]["Platform"]["architecture"] = "*";
  EXPECT_EQ(pick("amd64")->manifest_index, 0u);
  auto step = GetStep(*pick("amd64"), "Run");
  ASSERT_TRUE(step.ok());
  EXPECT_NE(step->script.find("exec {artifacts:path}/hub"), std::string::npos);
  EXPECT_EQ(GetStep(*pick("amd64"), "Shutdown").status().code(), ErrorCode::kNotFound);
}

TEST(GreengrassModelTest, ArtifactModes) {
  ArtifactView a;  // defaults: Read OWNER, Execute NONE
  EXPECT_EQ(a.Mode(), 0440u);
  EXPECT_EQ(a.Mode(/*legacy=*/true), 0400u);
  a.execute = "OWNER";
  EXPECT_EQ(a.Mode(), 0550u);
  EXPECT_EQ(a.Mode(true), 0500u);
  a.read = "ALL";
  a.execute = "ALL";
  EXPECT_EQ(a.Mode(), 0555u);
  EXPECT_EQ(a.Mode(true), 0555u);
  a.execute = "NONE";
  EXPECT_EQ(a.Mode(), 0444u);
  EXPECT_EQ(a.Mode(true), 0444u);
}

// --- what we ship ---

std::string Shipped(const std::string& name) {
  return std::string(MACHUB_SOURCE_DIR) + "/deploy/greengrass/" + name;
}

TEST(GreengrassShippedTest, RecipeAndExampleUpdatesAreClean) {
  if (!YamlSupported()) GTEST_SKIP() << "built without yaml-cpp (install libyaml-cpp-dev)";
  auto recipe = LoadDocument(Shipped("recipe.yaml"));
  ASSERT_TRUE(recipe.ok()) << recipe.status().message();
  auto findings = CheckRecipe(*recipe);
  EXPECT_TRUE(findings.empty()) << Dump(findings);
  for (const char* name : {"config-update.json", "config-reset-all.json", "deployment.json"}) {
    SCOPED_TRACE(name);
    auto update = LoadDocument(Shipped(name));
    ASSERT_TRUE(update.ok()) << update.status().message();
    auto f = CheckConfigUpdate(*recipe, *update);
    EXPECT_TRUE(f.empty()) << Dump(f);
    EXPECT_TRUE(ExtractConfigUpdate(*update, "com.machub.StoreHub").ok());
  }
}

TEST(GreengrassShippedTest, EveryPlatformRunsTheBinaryWithEveryKeyAsARealFlag) {
  if (!YamlSupported()) GTEST_SKIP() << "built without yaml-cpp (install libyaml-cpp-dev)";
  auto recipe = LoadDocument(Shipped("recipe.yaml"));
  ASSERT_TRUE(recipe.ok()) << recipe.status().message();
  auto update = LoadDocument(Shipped("config-update.json"));
  ASSERT_TRUE(update.ok());
  auto u = ExtractConfigUpdate(*update, "com.machub.StoreHub");
  ASSERT_TRUE(u.ok());
  json defaults = recipe->root["ComponentConfiguration"]["DefaultConfiguration"];
  json config = ResolveConfiguration(json::object(), defaults, {*u});
  for (const char* arch : {"aarch64", "arm", "amd64"}) {
    SCOPED_TRACE(arch);
    NucleusContext ctx{"/greengrass/v2", "linux", arch, "t"};
    auto view = SelectPlatform(*recipe, ctx);
    ASSERT_TRUE(view.ok()) << view.status().message();
    ASSERT_EQ(view->artifacts.size(), 1u);
    EXPECT_EQ(view->artifacts[0].file_name, "machub");
    EXPECT_EQ(view->artifacts[0].Mode(), 0550u);
    EXPECT_NE(view->artifacts[0].uri.find(std::string("/linux-") + arch + "/"), std::string::npos);
    auto run = GetStep(*view, "Run");
    ASSERT_TRUE(run.ok());
    EXPECT_FALSE(run->requires_privilege);
    std::string script = Interpolate(run->script, *view, ctx, config);
    EXPECT_EQ(script.rfind("exec \"/greengrass/v2/packages/artifacts/com.machub.StoreHub/0.1.0/"
                           "machub\" serve ",
                           0),
              0u)
        << script;
    EXPECT_EQ(script.find("{configuration:"), std::string::npos) << script;
    EXPECT_NE(script.find("--data-dir='/greengrass/v2/work/com.machub.StoreHub/data'"),
              std::string::npos);
    EXPECT_NE(script.find("--store-id='S042'"), std::string::npos);  // from the MERGE
    EXPECT_NE(script.find("--terminal-tokens='[\"T01:"), std::string::npos);
    // Every flag is a configuration key of `machub serve` (dotted keys such as
    // sync.bucket have the flag --sync-bucket)...
    std::regex flag("(--[a-z0-9-]+)=");
    int flags = 0;
    for (std::sregex_iterator it(script.begin(), script.end(), flag), end; it != end; ++it) {
      const std::string name = (*it)[1];
      bool known = std::any_of(ConfigKeys().begin(), ConfigKeys().end(),
                               [&](const ConfigKey& k) { return k.FlagName() == name; });
      EXPECT_TRUE(known) << name << " is not a flag of machub serve";
      ++flags;
    }
    // ...and every DefaultConfiguration value (leaves of nested objects too) is passed,
    // plus --data-dir.
    int leaves = 0;
    std::function<void(const json&)> count = [&](const json& v) {
      if (v.is_object()) {
        for (const auto& item : v.items()) count(item.value());
      } else {
        ++leaves;
      }
    };
    count(defaults);
    EXPECT_EQ(flags, leaves + 1);
  }
}

}  // namespace
}  // namespace machub::app::greengrass
