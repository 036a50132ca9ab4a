// API tests (api_test_support.h has the fixture): The API through the real server and with the real
// SQLite journal.
#include "http/api_test_support.h"

namespace machub::http {
namespace {

// ---- Through the real server, and with the real journal ----

TEST_F(ApiTest, OversizedSaleThroughTheServerIs413) {
  auto server = StartApiServer(api_.get(), 512);
  ASSERT_NE(server, nullptr);
  testing::Client client(server->port());
  auto res = client.Call("POST", "/v1/sales", SaleBody("s-1") + std::string(600, ' '),
                         {{"Authorization", std::string("Bearer ") + kTokenOne}});
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_EQ(json::parse(res.body())["error"]["code"], "payload_too_large");
  EXPECT_EQ(journal_.appends(), 0);
  server->Stop();
}

class RealJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    dir_ = tmp_.path();
    journal::JournalOptions options;
    options.path = dir_ + "/journal.db";
    options.store_id = "S042";
    options.metrics = &metrics_;
    auto opened = journal::SqliteJournal::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    journal_ = std::move(opened).value();
    ApiOptions api_options;
    api_options.store_id = "S042";
    api_options.tokens = {{"T01", HashToken(kTokenOne), 0, Role::kManager},
                          {"T02", HashToken(kTokenTwo)}};
    api_ = std::make_unique<ApiHandler>(api_options, journal_.get(), &metrics_, nullptr);
    server_ = StartApiServer(api_.get());
    ASSERT_NE(server_, nullptr);
    api_->SetConnectionsSource([s = server_.get()] { return s->connections(); });
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (api_) api_->SetConnectionsSource(nullptr);
    if (journal_) journal_->Close();
  }

  machub::testing::TempDir tmp_{"machub-http-journal"};  // removed after everything below
  std::string dir_;
  core::MetricsRegistry metrics_;
  std::unique_ptr<journal::SqliteJournal> journal_;
  std::unique_ptr<ApiHandler> api_;
  std::unique_ptr<Server> server_;
};

TEST_F(RealJournalTest, PostReplayConflictGetListOverHttp) {
  testing::Client client(server_->port());
  const std::vector<std::pair<std::string, std::string>> auth = {
      {"Authorization", std::string("Bearer ") + kTokenOne}};
  auto created = client.Call("POST", "/v1/sales", SaleBody("r-1"), auth);
  ASSERT_EQ(created.result_int(), 201) << created.body();
  json body = json::parse(created.body());
  EXPECT_EQ(body["seq"], 1);
  EXPECT_EQ(body["total"], "7.58");
  EXPECT_EQ(body["change"], "0.42");

  auto replay = client.Call("POST", "/v1/sales", SaleBody("r-1"), auth);
  EXPECT_EQ(replay.result_int(), 200);
  EXPECT_EQ(replay.body(), created.body());

  auto conflict = client.Call("POST", "/v1/sales", SaleBody("r-1", "T01", "1"), auth);
  EXPECT_EQ(conflict.result_int(), 409);
  EXPECT_EQ(json::parse(conflict.body())["error"]["code"], "id_conflict");

  auto other = client.Call("POST", "/v1/sales", SaleBody("r-2", "T02"), auth);
  EXPECT_EQ(other.result_int(), 403);

  auto get = client.Call("GET", "/v1/sales/r-1", {}, auth);
  ASSERT_EQ(get.result_int(), 200);
  EXPECT_EQ(json::parse(get.body())["hash"], body["hash"]);

  auto list = client.Call("GET", "/v1/sales?after_seq=0", {}, auth);
  ASSERT_EQ(list.result_int(), 200);
  EXPECT_EQ(json::parse(list.body())["next_after_seq"], 1);

  auto status = json::parse(client.Call("GET", "/v1/status", {}, auth).body());
  EXPECT_EQ(status["journal"]["last_seq"], 1);
  EXPECT_EQ(status["journal"]["healthy"], true);

  auto health = client.Call("GET", "/healthz");
  EXPECT_EQ(health.result_int(), 200);

  auto metrics = client.Call("GET", "/metrics", {}, auth);
  EXPECT_NE(metrics.body().find("machub_http_connections 1"), std::string::npos);
}

TEST_F(RealJournalTest, StoreDayOverHttpDrawersXAndZ) {
  testing::Client client(server_->port());
  const std::vector<std::pair<std::string, std::string>> manager = {
      {"Authorization", std::string("Bearer ") + kTokenOne}};
  const std::vector<std::pair<std::string, std::string>> terminal = {
      {"Authorization", std::string("Bearer ") + kTokenTwo}};
  auto open =
      client.Call("POST", "/v1/events", EventBody("rd-open", "drawer_open", "T02"), terminal);
  ASSERT_EQ(open.result_int(), 201) << open.body();
  EXPECT_EQ(json::parse(open.body())["seq"], 1);
  auto replay =
      client.Call("POST", "/v1/events", EventBody("rd-open", "drawer_open", "T02"), terminal);
  EXPECT_EQ(replay.result_int(), 200);
  EXPECT_EQ(replay.body(), open.body());
  auto twice =
      client.Call("POST", "/v1/events", EventBody("rd-open2", "drawer_open", "T02"), terminal);
  EXPECT_EQ(twice.result_int(), 409);
  EXPECT_EQ(json::parse(twice.body())["error"]["code"], "drawer_already_open");
  ASSERT_EQ(client.Call("POST", "/v1/sales", SaleBody("rd-sale", "T02"), terminal).result_int(),
            201);
  ASSERT_EQ(client
                .Call("POST", "/v1/events",
                      EventBody("rd-out", "cash_out", "T02", {{"amount", "2.58"}}), terminal)
                .result_int(),
            201);

  auto mine = client.Call("GET", "/v1/drawers", {}, terminal);
  ASSERT_EQ(mine.result_int(), 200) << mine.body();
  json view = json::parse(mine.body());
  ASSERT_EQ(view["open"].size(), 1u) << mine.body();
  EXPECT_EQ(view["open"][0]["expected"], "105.00");  // 100 + 7.58 - 2.58

  auto x = client.Call("GET", "/v1/reports/x", {}, manager);
  ASSERT_EQ(x.result_int(), 200) << x.body();
  json report = json::parse(x.body());
  EXPECT_EQ(report["figures"]["sales"]["count"], 1);
  EXPECT_EQ(report["figures"]["cash_out"], "2.58");
  EXPECT_EQ(report["open_drawers"][0]["expected"], "105.00");
  EXPECT_EQ(client.Call("GET", "/v1/reports/x", {}, terminal).result_int(), 403);

  auto close =
      client.Call("POST", "/v1/events",
                  EventBody("rd-close", "drawer_close", "T02", {{"counted", "104.50"}}), terminal);
  ASSERT_EQ(close.result_int(), 201) << close.body();
  auto late = client.Call("POST", "/v1/events", EventBody("rd-in", "cash_in", "T02"), terminal);
  EXPECT_EQ(late.result_int(), 409);
  EXPECT_EQ(json::parse(late.body())["error"]["code"], "drawer_closed");

  EXPECT_EQ(client.Call("GET", "/v1/reports/z/last", {}, manager).result_int(), 404);
  auto z = client.Call("POST", "/v1/reports/z", ZBody("rd-z1", {{"terminal_id", "T01"}}), manager);
  ASSERT_EQ(z.result_int(), 201) << z.body();
  json z1 = json::parse(z.body());
  EXPECT_EQ(z1["receipt_no"], "Z1");
  EXPECT_EQ(z1["z_number"], 1);
  EXPECT_EQ(z1["first_seq"], 1);
  EXPECT_EQ(z1["last_seq"], 4);
  EXPECT_EQ(z1["figures"]["sales"]["count"], 1);
  EXPECT_EQ(z1["figures"]["drawers"][0]["variance"], "-0.50");
  // The same figures the X report showed before the close, plus the drawer's count.
  EXPECT_EQ(z1["figures"]["by_method"], report["figures"]["by_method"]);
  auto z_again =
      client.Call("POST", "/v1/reports/z", ZBody("rd-z1", {{"terminal_id", "T01"}}), manager);
  EXPECT_EQ(z_again.result_int(), 200);
  EXPECT_EQ(z_again.body(), z.body());
  auto z_other = client.Call("POST", "/v1/reports/z",
                             ZBody("rd-z1", {{"created_at", "2026-11-28T22:00:00Z"}}), manager);
  EXPECT_EQ(z_other.result_int(), 409);
  EXPECT_EQ(json::parse(z_other.body())["error"]["code"], "id_conflict");
  auto last = client.Call("GET", "/v1/reports/z/last", {}, manager);
  ASSERT_EQ(last.result_int(), 200);
  EXPECT_EQ(last.body(), z.body());

  report = json::parse(client.Call("GET", "/v1/reports/x", {}, manager).body());
  EXPECT_EQ(report["last_z"]["z_number"], 1);
  EXPECT_EQ(report["figures"]["entries"], 0);
  EXPECT_EQ(report["open_drawers"].size(), 0u);
  auto verified = journal_->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
}

TEST_F(RealJournalTest, ConcurrentClientsAllGetTheirSaleStored) {
  constexpr int kClients = 8;
  constexpr int kSalesEach = 10;
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      testing::Client client(server_->port());
      for (int i = 0; i < kSalesEach; ++i) {
        auto res = client.Call("POST", "/v1/sales",
                               SaleBody("c" + std::to_string(c) + "-" + std::to_string(i)),
                               {{"Authorization", std::string("Bearer ") + kTokenOne}});
        if (res.result_int() == 201) ++created;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), kClients * kSalesEach);
  auto stats = journal_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->sales, kClients * kSalesEach);
  auto verified = journal_->VerifyChain();
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(*verified, kClients * kSalesEach);
}

}  // namespace
}  // namespace machub::http
