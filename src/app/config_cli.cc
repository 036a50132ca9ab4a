#include "app/config_cli.h"

namespace machub::app {

void ConfigFlags::Register(CLI::App* app) {
  app->add_option("--config", config_file_,
                  "TOML configuration file (default: the MACHUB_CONFIG environment variable)")
      ->type_name("FILE");
  for (const ConfigKey& key : ConfigKeys()) {
    Storage& store = storage_.emplace_back();
    std::string help = key.help + " [env " + key.EnvName() + "]";
    // Values are read back from Option::results(), which keeps every occurrence; the
    // bound variable only decides how CLI11 shows and counts the flag.
    CLI::Option* opt = key.type == KeyType::kStringList
                           ? app->add_option(key.FlagName(), store.list, help)
                           : app->add_option(key.FlagName(), store.scalar, help)
                                 ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    opt->allow_extra_args(false);
    switch (key.type) {
      case KeyType::kBool:
        opt->expected(0, 1);
        opt->type_name("BOOL");
        break;
      case KeyType::kInt:
        opt->type_name("INT");
        break;
      case KeyType::kFloat:
        opt->type_name("NUM");
        break;
      case KeyType::kString:
        opt->type_name("TEXT");
        break;
      case KeyType::kStringList:
        opt->type_name("LIST");
        break;
    }
    options_.emplace_back(&key, opt);
  }
}

ConfigInputs ConfigFlags::Inputs() const {
  ConfigInputs inputs;
  inputs.config_file = config_file_;
  for (const auto& [key, opt] : options_) {
    for (const std::string& value : opt->results()) inputs.flags.emplace_back(key->name, value);
  }
  return inputs;
}

std::vector<std::string> SplitEmptyFlagValues(int argc, const char* const* argv) {
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && arg.size() > 3 && arg.rfind("--", 0) == 0 && arg.back() == '=' &&
        arg.find('=') == arg.size() - 1) {
      out.push_back(arg.substr(0, arg.size() - 1));
      out.emplace_back();
    } else {
      out.push_back(std::move(arg));
    }
  }
  return out;
}

}  // namespace machub::app
