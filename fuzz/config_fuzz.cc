// Fuzz target: the TOML configuration loader (app::LoadConfig). LoadConfig reads a file
// (there is no string entry point), so each input is written to one private temporary
// file; the environment is empty and no flags are given. The loader must never crash, a
// refusal must carry an error code, and an accepted configuration must render
// (ConfigToToml).

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "app/config.h"
#include "fuzz_check.h"

namespace {

using machub::fuzz::Check;

std::string TempPath() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/machub-config-fuzz-" +
           std::to_string(getpid()) + ".toml";
  }();
  return path;
}

bool WriteFile(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

machub::Result<machub::app::Config> Load(const std::string& path) {
  machub::app::ConfigInputs inputs;
  inputs.config_file = path;
  inputs.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  return machub::app::LoadConfig(inputs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string path = TempPath();
  Check(WriteFile(path, data, size), "cannot write the temporary config file");
  auto config = Load(path);
  std::remove(path.c_str());
  if (!config.ok()) {
    Check(config.status().code() != machub::ErrorCode::kOk, "error without code");
    return 0;
  }
  const std::string rendered = machub::app::ConfigToToml(*config);
  Check(!rendered.empty(), "empty rendering");
  return 0;
}
