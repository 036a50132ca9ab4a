// machub-greengrass: the Greengrass recipe tools as a host executable, for machines (and
// builds) that have no `machub greengrass`, such as a workstation preparing a deployment
// for the device build, which leaves the tools out.
//
//   machub-greengrass check RECIPE [CONFIG_UPDATE...] [--strict]
//   machub-greengrass render RECIPE [--update FILE]... [--root DIR] [--arch ARCH] [...]
//
// Same options, output and exit codes as `machub greengrass check|render`
// (greengrass_check.h): 0 ok, 1 findings (check) or nothing to render, 2 usage error or a
// file that cannot be read or parsed.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "greengrass/greengrass_check.h"

int main(int argc, char** argv) {
  CLI::App app{"Check or render a Greengrass V2 recipe (the host side of machub)",
               "machub-greengrass"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("machub-greengrass ") + MACHUB_VERSION);
  std::function<int()> run;
  machub::app::greengrass::AddGreengrassSubcommands(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (!run) {
    std::fprintf(stderr, "machub-greengrass: no command given (see --help)\n");
    return 2;
  }
  return run();
}
