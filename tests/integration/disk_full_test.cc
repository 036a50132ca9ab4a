// The journal on a tiny filesystem (a size-limited tmpfs, so this needs root): once it is
// full, sales get 503 and earlier sales stay readable; after space is freed, sales are
// accepted again and nothing acknowledged is lost.

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace machub::testing {
namespace {

TEST(DiskFullTest, FullDiskAnswers503ThenRecovers) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs; skipped";
  TempDir dir;
  std::string mnt = dir.Join("small");
  std::filesystem::create_directory(mnt);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1536k") != 0) {
    GTEST_SKIP() << "mount(tmpfs) refused (" << strerror(errno)
                 << "): no mount privilege in this container; skipped";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};

  // Ballast that is deleted later to free space.
  {
    std::ofstream ballast(mnt + "/ballast", std::ios::binary);
    std::string chunk(64 * 1024, 'b');
    for (int i = 0; i < 8; ++i) ballast << chunk;
  }
  auto terminals = MakeTerminals(1);
  Hub::Options o;
  o.data_dir = mnt + "/data";
  o.terminals = terminals;
  o.log_path = dir.Join("hub.log");
  auto hub = Hub::Start(o);
  HttpClient client(hub->port());

  std::vector<std::string> acked;
  int status = 0;
  for (int i = 0; i < 20000 && status != 503; ++i) {
    std::string id = "d-" + std::to_string(i);
    auto r = client.Post("/v1/sales", SaleBody(id, "T01"), terminals[0].token);
    status = r.status;
    if (status == 201) {
      acked.push_back(id);
    } else {
      ASSERT_EQ(status, 503) << r.body;
    }
  }
  ASSERT_EQ(status, 503) << "the filesystem never filled";
  ASSERT_GT(acked.size(), 10u);
  // Still full. A few more attempts: each is refused with 503 and stored nowhere, or (when
  // its commit fits the space the failed one could not use: small pages, a WAL that ends
  // mid-block) acknowledged and stored like any other; checked below.
  std::vector<std::string> refused;
  for (int i = 0; i < 3; ++i) {
    const std::string id = "late-" + std::to_string(i);
    const int late = client.Post("/v1/sales", SaleBody(id, "T01"), terminals[0].token).status;
    ASSERT_TRUE(late == 503 || late == 201) << late;
    (late == 503 ? refused : acked).push_back(id);
  }
  EXPECT_EQ(client.Get("/v1/sales/" + acked.front(), terminals[0].token).status, 200);
  EXPECT_EQ(client.Get("/v1/sales/" + acked.back(), terminals[0].token).status, 200);

  std::filesystem::remove(mnt + "/ballast");
  auto r = client.Post("/v1/sales", SaleBody("after-free", "T01"), terminals[0].token);
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(client.Get("/healthz").status, 200);
  for (const auto& id : acked) {
    ASSERT_EQ(client.Get("/v1/sales/" + id, terminals[0].token).status, 200) << id;
  }
  for (const auto& id : refused) {
    EXPECT_EQ(client.Get("/v1/sales/" + id, terminals[0].token).status, 404) << id;
  }
  EXPECT_EQ(hub->Terminate(), 0);
  auto verify = RunCommand({MachubBinary(), "journal", "verify", "--data-dir", o.data_dir});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
}

}  // namespace
}  // namespace machub::testing
