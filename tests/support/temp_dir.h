#pragma once
// TempDir: a fresh folder under the system's temporary directory ($TMPDIR, else /tmp) for
// one test, removed with everything in it when the object goes (test support, never in
// the hub). Not copyable; create one per test or fixture.

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

namespace machub::testing {

class TempDir {
 public:
  // `prefix` names the folder ("<prefix>.XXXXXX") so a leftover one says whose it was.
  explicit TempDir(std::string_view prefix = "machub-test") {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + ".XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = std::move(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // False when the folder could not be made (path() is then empty).
  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // Writes `content` to path()/relative (parent folders created) and returns that path.
  std::string Write(const std::string& relative, std::string_view content) const {
    const std::filesystem::path file = std::filesystem::path(path_) / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary | std::ios::trunc)
        .write(content.data(), static_cast<std::streamsize>(content.size()));
    return file.string();
  }

 private:
  std::string path_;
};

}  // namespace machub::testing
