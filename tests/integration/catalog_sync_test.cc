// The embedded default end to end with the real binary: sales reach the local folder
// standing in for S3 exactly once (`machub verify` agrees), and a catalog placed in that
// folder is served by GET /v1/catalog (ETag, 304) and GET /v1/products/{sku}.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace machub::testing {
namespace {

using nlohmann::json;

TEST(CatalogAndSyncIntegration, LocalFolderUploadAndCatalogRoutes) {
  TempDir dir;
  auto terminals = MakeTerminals(1);
  terminals[0].manager = true;  // reads /v1/status
  const std::string data = dir.Join("data");
  const std::string s3 = dir.Join("s3");
  const std::string catalog_dir = s3 + "/catalog/store=S001";
  std::filesystem::create_directories(catalog_dir);
  {
    std::ofstream out(catalog_dir + "/catalog.json");
    out << R"({"version":"v7","currency":"USD","products":[
      {"sku":"0001","name":"Coffee","price":"3.5","tax_rate":"0.0825"},
      {"sku":"0002","name":"Tea","price":"2.00","tax_rate":"0","active":false}]})";
  }
  Hub::Options o;
  o.data_dir = data;
  o.terminals = terminals;
  o.extra_args = {"--sync-dir", s3, "--sync-batch-max-age-s", "0", "--sync-batch-max-sales", "7"};
  auto hub = Hub::Start(o);
  HttpClient client(hub->port());
  const std::string& token = terminals[0].token;

  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(client.Post("/v1/sales", SaleBody("s-" + std::to_string(i), "T01"), token).status,
              201);
  }
  // Everything reaches the folder: `machub verify` (which reads only the objects) sees
  // seq 1..20; then the backlog in /v1/status drains to zero.
  auto verify_json = [&]() -> json {
    auto r = RunCommand({MachubBinary(), "verify", "--dir", s3, "--data-dir", data});
    auto brace = r.out.find('{');
    if (brace == std::string::npos) return json::object();
    auto line = r.out.substr(brace);
    return json::parse(line.substr(0, line.find('\n')), nullptr, false);
  };
  ASSERT_TRUE(
      WaitFor([&] { return verify_json().value("last_seq", 0) == 20; }, std::chrono::seconds(30)));
  ASSERT_TRUE(WaitFor(
      [&] {
        auto st = json::parse(client.Get("/v1/status", token).body);
        return st["backlog"]["sales"] == 0 && st["cloud"]["state"] == "online";
      },
      std::chrono::seconds(20)))
      << client.Get("/v1/status", token).body;

  // The catalog, fetched at start from the same folder.
  ASSERT_TRUE(WaitFor([&] { return client.Get("/v1/catalog", token).status == 200; },
                      std::chrono::seconds(10)));
  auto cat = client.Get("/v1/catalog", token);
  auto cj = json::parse(cat.body);
  EXPECT_EQ(cj["version"], "v7");
  ASSERT_FALSE(cat.headers["etag"].empty());
  auto again = client.Request(
      "GET", "/v1/catalog", "",
      {{"Authorization", "Bearer " + token}, {"If-None-Match", cat.headers["etag"]}});
  EXPECT_EQ(again.status, 304);
  auto product = client.Get("/v1/products/0001", token);
  ASSERT_EQ(product.status, 200) << product.body;
  EXPECT_EQ(json::parse(product.body)["price"], "3.50");
  EXPECT_EQ(client.Get("/v1/products/9999", token).status, 404);
  EXPECT_EQ(client.Get("/v1/catalog").status, 401);

  EXPECT_EQ(hub->Terminate(), 0);
  // 20 sales in batches of at most 7 (cut as soon as sales arrive, so how many depends on
  // timing): at least three objects, every seq once, the chain intact.
  auto verify = RunCommand({MachubBinary(), "verify", "--dir", s3, "--data-dir", data});
  ASSERT_EQ(verify.exit_code, 0) << verify.out;
  auto line = verify.out.substr(verify.out.find('{'));
  auto v = json::parse(line.substr(0, line.find('\n')));
  EXPECT_EQ(v["sales"], 20);
  EXPECT_GE(v["objects"].get<int>(), 3);
  EXPECT_LE(v["objects"].get<int>(), 20);
  EXPECT_EQ(v["first_seq"], 1);
  EXPECT_EQ(v["last_seq"], 20);
  EXPECT_EQ(v["gaps"], 0);
  EXPECT_EQ(v["duplicates"], 0);
  EXPECT_EQ(v["chain_breaks"], 0);

  // Tampering with one object is caught.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(s3 + "/sales")) {
    if (entry.path().extension() == ".gz") {
      std::filesystem::remove(entry.path());
      break;
    }
  }
  auto broken = RunCommand({MachubBinary(), "verify", "--dir", s3, "--data-dir", data});
  EXPECT_EQ(broken.exit_code, 1) << broken.out;
}

// One process per data folder: a second `serve` or a `sync --once` beside a running hub is
// refused with a clear message and changes nothing; after the hub is SIGKILLed (the kernel
// drops its lock) `sync --once` uploads the backlog.
TEST(CatalogAndSyncIntegration, DataFolderIsLockedWhileAHubRuns) {
  TempDir dir;
  auto terminals = MakeTerminals(1);
  const std::string data = dir.Join("data");
  const std::string s3 = dir.Join("s3");
  Hub::Options o;
  o.data_dir = data;
  o.terminals = terminals;
  o.extra_args = {"--sync-dir", s3, "--sync-batch-max-age-s", "3600"};
  auto hub = Hub::Start(o);
  HttpClient client(hub->port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(
        client.Post("/v1/sales", SaleBody("l-" + std::to_string(i), "T01"), terminals[0].token)
            .status,
        201);
  }
  const std::string sync_cmd =
      MachubBinary() + " sync --once --data-dir " + data + " --sync-dir " + s3 + " 2>&1";
  auto sync = RunCommand({"/bin/sh", "-c", sync_cmd}, 60);
  EXPECT_EQ(sync.exit_code, 1) << sync.out;
  EXPECT_NE(sync.out.find("is in use by another machub process (pid " +
                          std::to_string(hub->process().pid()) + ")"),
            std::string::npos)
      << sync.out;
  EXPECT_FALSE(std::filesystem::exists(s3 + "/sales"));

  auto second = RunCommand({MachubBinary(), "serve", "--data-dir", data, "--listen", "127.0.0.1:0",
                            "--demo-token", "false"},
                           60);
  EXPECT_EQ(second.exit_code, 1) << second.out;
  EXPECT_NE(second.out.find("data_dir_locked"), std::string::npos) << second.out;
  // The first hub is unaffected.
  EXPECT_EQ(client.Post("/v1/sales", SaleBody("l-5", "T01"), terminals[0].token).status, 201);

  hub->Kill();
  auto after = RunCommand({"/bin/sh", "-c", sync_cmd}, 120);
  ASSERT_EQ(after.exit_code, 0) << after.out;
  auto v = RunCommand({MachubBinary(), "verify", "--dir", s3, "--data-dir", data});
  EXPECT_EQ(v.exit_code, 0) << v.out;
  EXPECT_NE(v.out.find("\"last_seq\":6"), std::string::npos) << v.out;
}

// The per-store configuration (issue #11) end to end with the real binary: store.json in
// the folder standing in for S3 adds a terminal's token and lowers the offline card limit;
// a new document revokes the token without a restart; after a restart with the object
// gone, the last good copy still lets the terminal sell.
TEST(CatalogAndSyncIntegration, StoreConfigTokensAndLimitsFromTheCloud) {
  TempDir dir;
  auto terminals = MakeTerminals(2);
  terminals[0].manager = true;
  const std::string data = dir.Join("data");
  const std::string s3 = dir.Join("s3");
  const std::string config_dir = s3 + "/config/store=S001";
  std::filesystem::create_directories(config_dir);
  const Terminal t02 = terminals[1];
  auto write_config = [&](const std::string& version, bool with_t02) {
    json doc = {{"version", version},
                {"terminal_tokens", json::array()},
                {"offline", {{"card_max_amount", "10.00"}, {"store_max_outstanding", ""}}}};
    if (with_t02) doc["terminal_tokens"].push_back({{"terminal_id", "T02"}, {"sha256", t02.hash}});
    const std::string tmp = config_dir + "/.store.json.tmp";
    std::ofstream(tmp) << doc.dump();
    std::filesystem::rename(tmp, config_dir + "/store.json");
  };
  write_config("v1", true);
  Hub::Options o;
  o.data_dir = data;
  o.terminals = {terminals[0]};  // T02's token only comes from store.json
  o.extra_args = {"--sync-dir", s3, "--sync-catalog-interval-s", "1",
                  "--offline-card-max-amount=500.00"};
  auto hub = Hub::Start(o);
  HttpClient client(hub->port());
  const std::string& manager = terminals[0].token;
  int n = 0;
  auto t02_sale = [&] {
    return client.Post("/v1/sales", SaleBody("sc-" + std::to_string(n++), "T02"), t02.token).status;
  };
  ASSERT_TRUE(WaitFor([&] { return t02_sale() == 201; }, std::chrono::seconds(20)))
      << client.Get("/v1/status", manager).body;
  json st = json::parse(client.Get("/v1/status", manager).body)["store_config"];
  EXPECT_EQ(st["version"], "v1") << st;
  EXPECT_EQ(st["terminal_tokens"], 1);
  EXPECT_EQ(st["offline"]["card_max_amount"], "10.00");
  EXPECT_TRUE(st["last_error"].is_null()) << st;

  // The store's card limit (10.00) replaced the configured 500.00.
  const json offline_sale = {
      {"id", "sc-offline"},
      {"terminal_id", "T01"},
      {"created_at", "2026-11-27T10:15:00Z"},
      {"currency", "USD"},
      {"lines", {{{"sku", "1"}, {"name", "Gift"}, {"qty", "1"}, {"unit_price", "20.00"}}}},
      {"payments",
       {{{"method", "card"},
         {"amount", "20.00"},
         {"card_token", "tok_a"},
         {"last4", "4242"},
         {"offline", true}}}}};
  auto refused = client.Post("/v1/sales", offline_sale.dump(), manager);
  ASSERT_EQ(refused.status, 422) << refused.body;
  EXPECT_EQ(json::parse(refused.body)["error"]["limit"], "offline.card_max_amount");
  EXPECT_EQ(json::parse(refused.body)["error"]["limit_amount"], "10.00");

  // A document without T02 revokes its token while the hub runs.
  write_config("v2", false);
  ASSERT_TRUE(WaitFor([&] { return t02_sale() == 401; }, std::chrono::seconds(20)));
  EXPECT_EQ(json::parse(client.Get("/v1/status", manager).body)["store_config"]["version"], "v2");
  // An invalid document is refused whole: v2 stays, and status says where.
  std::ofstream(config_dir + "/store.json")
      << R"({"version":"v3","terminal_tokens":[{"terminal_id":"T02","sha256":"NOTAHASH"}]})";
  ASSERT_TRUE(WaitFor(
      [&] {
        json sc = json::parse(client.Get("/v1/status", manager).body)["store_config"];
        return sc["last_error"].is_string() &&
               sc["last_error"].get<std::string>().find("terminal_tokens[0].sha256") !=
                   std::string::npos;
      },
      std::chrono::seconds(20)));
  EXPECT_EQ(json::parse(client.Get("/v1/status", manager).body)["store_config"]["version"], "v2");
  EXPECT_EQ(t02_sale(), 401);

  write_config("v4", true);
  ASSERT_TRUE(WaitFor([&] { return t02_sale() == 201; }, std::chrono::seconds(20)));
  ASSERT_EQ(hub->Terminate(), 0);

  // Restart with the object gone: the last good copy (v4) is used from the first sale.
  std::filesystem::remove(config_dir + "/store.json");
  o.port = hub->port();
  hub = Hub::Start(o);
  HttpClient again(hub->port());
  EXPECT_EQ(again.Post("/v1/sales", SaleBody("sc-after", "T02"), t02.token).status, 201);
  ASSERT_TRUE(WaitFor(
      [&] {
        json sc = json::parse(again.Get("/v1/status", manager).body)["store_config"];
        return sc["last_error"].is_string();
      },
      std::chrono::seconds(20)));
  json after = json::parse(again.Get("/v1/status", manager).body)["store_config"];
  EXPECT_EQ(after["version"], "v4") << after;
  EXPECT_NE(after["last_error"].get<std::string>().find("no store configuration object"),
            std::string::npos)
      << after;
  EXPECT_EQ(hub->Terminate(), 0);
}

}  // namespace
}  // namespace machub::testing
