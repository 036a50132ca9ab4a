#pragma once
// Command-line flags for every configuration key, generated from the key table
// (config.h), for the CLI11 subcommands that load a configuration (`serve`,
// `config show`).
//
// Usage: ConfigFlags flags; flags.Register(subcommand); ...parse...;
//        LoadConfig(flags.Inputs()).
// The ConfigFlags object must outlive the parse (CLI11 stores into it).
// Threads: single-threaded, like CLI11.

#include <CLI/CLI.hpp>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "app/config.h"

namespace machub::app {

class ConfigFlags {
 public:
  // Adds --config FILE and one flag per key (--listen, --terminal-tokens, ...). Boolean
  // flags take an optional value (`--metrics-public`, `--metrics-public false`); list
  // flags may be repeated.
  void Register(CLI::App* app);

  // The parsed flags (and --config) as LoadConfig inputs; the environment is the
  // process's.
  ConfigInputs Inputs() const;

 private:
  std::string config_file_;
  struct Storage {
    std::string scalar;
    std::vector<std::string> list;
  };
  std::deque<Storage> storage_;  // stable addresses for CLI11
  std::vector<std::pair<const ConfigKey*, CLI::Option*>> options_;
};

// CLI11 reads "--key=" (empty value) as a flag without its value and then takes the next
// argument as the value. Rewrites every "--name=" into "--name" "" so that an empty
// value, as a templated Greengrass command line may produce, stays empty.
std::vector<std::string> SplitEmptyFlagValues(int argc, const char* const* argv);

}  // namespace machub::app
