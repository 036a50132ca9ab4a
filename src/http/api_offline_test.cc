// API tests (api_test_support.h has the fixture): Offline card payments over the API, and the alert
// list.
#include "http/api_test_support.h"

namespace machub::http {
namespace {

// ---- Offline card payments (issue #9) ----

std::string OfflineSale(std::string_view id, std::string_view terminal, std::string_view amount) {
  json body = {
      {"id", id},
      {"terminal_id", terminal},
      {"type", "sale"},
      {"created_at", "2026-11-27T10:15:00Z"},
      {"currency", "USD"},
      {"lines", {{{"sku", "0001"}, {"name", "Gift"}, {"qty", "1"}, {"unit_price", amount}}}},
      {"payments",
       {{{"method", "card"},
         {"amount", amount},
         {"card_token", "tok_visa_4242"},
         {"last4", "4242"},
         {"offline", true}}}}};
  return body.dump();
}

std::string Outcome(std::string_view id, std::string_view result) {
  json body = {{"id", id}, {"result", result}};
  if (result == "approved") body["auth_code"] = "A1B2C3";
  if (result == "declined") body["reason"] = "insufficient funds";
  return body.dump();
}

class OfflineApiTest : public ApiTest {
 protected:
  void SetUp() override {
    journal::OfflineLimits limits;
    limits.card_max_amount = "150.00";
    limits.terminal_max_outstanding = "200.00";
    limits.store_max_outstanding = "300.00";
    journal_.SetOfflineLimits(limits);
    ApiOptions options = DefaultOptions();
    options.offline_max_age_ms = 2 * 3600 * 1000;
    Build(std::move(options));
  }
  static json Body(const Response& r) { return json::parse(r.body); }
};

TEST_F(OfflineApiTest, EachLimitRefusesWith422AndItsFiguresNothingStored) {
  ASSERT_EQ(Call("POST", "/v1/sales", OfflineSale("o-1", "T02", "120.00"), kTokenTwo).status, 201);
  const size_t stored = journal_.size();
  Response card = Call("POST", "/v1/sales", OfflineSale("o-2", "T02", "150.01"), kTokenTwo);
  EXPECT_EQ(card.status, 422);
  EXPECT_EQ(CodeOf(card), "offline_limit_exceeded");
  EXPECT_EQ(FieldOf(card), "payments[0].amount");
  json e = Body(card)["error"];
  EXPECT_EQ(e["limit"], "offline.card_max_amount");
  EXPECT_EQ(e["limit_amount"], "150.00");
  EXPECT_EQ(e["exposure"], "150.01");
  EXPECT_EQ(e["remaining"], "150.00");
  Response terminal = Call("POST", "/v1/sales", OfflineSale("o-3", "T02", "80.01"), kTokenTwo);
  EXPECT_EQ(terminal.status, 422);
  e = Body(terminal)["error"];
  EXPECT_EQ(e["limit"], "offline.terminal_max_outstanding");
  EXPECT_EQ(e["limit_amount"], "200.00");
  EXPECT_EQ(e["exposure"], "120.00");
  EXPECT_EQ(e["remaining"], "80.00");
  EXPECT_EQ(journal_.size(), stored);
  // Exactly up to the terminal limit passes; the store limit then holds for T01.
  ASSERT_EQ(Call("POST", "/v1/sales", OfflineSale("o-4", "T02", "80.00"), kTokenTwo).status, 201);
  ASSERT_EQ(Call("POST", "/v1/sales", OfflineSale("o-5", "T01", "100.00")).status, 201);
  Response store = Call("POST", "/v1/sales", OfflineSale("o-6", "T01", "0.01"));
  EXPECT_EQ(store.status, 422);
  e = Body(store)["error"];
  EXPECT_EQ(e["limit"], "offline.store_max_outstanding");
  EXPECT_EQ(e["exposure"], "300.00");
  EXPECT_EQ(e["remaining"], "0.00");
  EXPECT_EQ(Call("GET", "/v1/sales/o-6").status, 404);
}

TEST_F(OfflineApiTest, OutcomeByTheSalesTerminalOrAManagerReleasesExposure) {
  ASSERT_EQ(Call("POST", "/v1/sales", OfflineSale("o-1", "T02", "120.00"), kTokenTwo).status, 201);
  ASSERT_EQ(Call("POST", "/v1/sales", OfflineSale("o-2", "T01", "100.00")).status, 201);
  json offline = Body(Call("GET", "/v1/offline"));
  EXPECT_EQ(offline["store"]["exposure"], "220.00");
  EXPECT_EQ(offline["store"]["limit"], "300.00");
  EXPECT_EQ(offline["store"]["remaining"], "80.00");
  EXPECT_EQ(offline["outstanding"], 2);
  EXPECT_EQ(offline["terminal_limit"], "200.00");
  EXPECT_EQ(offline["card_max_amount"], "150.00");
  ASSERT_EQ(offline["terminals"].size(), 2u);
  EXPECT_EQ(offline["terminals"][1]["terminal_id"], "T02");
  EXPECT_EQ(offline["terminals"][1]["exposure"], "120.00");
  EXPECT_EQ(offline["terminals"][1]["percent"], 60.0);

  // T02 may not answer T01's sale; T01 (a manager token here) may answer anything.
  Response other =
      Call("POST", "/v1/sales/o-2/payments/0/authorization", Outcome("a-1", "approved"), kTokenTwo);
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(CodeOf(other), "forbidden");
  Response own =
      Call("POST", "/v1/sales/o-1/payments/0/authorization", Outcome("a-1", "declined"), kTokenTwo);
  ASSERT_EQ(own.status, 201) << own.body;
  json entry = Body(own);
  EXPECT_EQ(entry["type"], "payment_authorization");
  EXPECT_EQ(entry["sale_id"], "o-1");
  EXPECT_EQ(entry["result"], "declined");
  Response replay =
      Call("POST", "/v1/sales/o-1/payments/0/authorization", Outcome("a-1", "declined"), kTokenTwo);
  EXPECT_EQ(replay.status, 200);
  EXPECT_EQ(replay.body, own.body);
  Response twice =
      Call("POST", "/v1/sales/o-1/payments/0/authorization", Outcome("a-2", "approved"));
  EXPECT_EQ(twice.status, 409);
  EXPECT_EQ(CodeOf(twice), "payment_resolved");
  EXPECT_EQ(Body(twice)["error"]["state"], "declined");
  ASSERT_EQ(
      Call("POST", "/v1/sales/o-2/payments/0/authorization", Outcome("a-3", "approved")).status,
      201);
  offline = Body(Call("GET", "/v1/offline"));
  EXPECT_EQ(offline["store"]["exposure"], "0.00");
  EXPECT_EQ(offline["outstanding"], 0);
  EXPECT_TRUE(offline["oldest_age_s"].is_null());

  json declined = Body(Call("GET", "/v1/offline-payments?state=declined"));
  ASSERT_EQ(declined["payments"].size(), 1u);
  EXPECT_EQ(declined["payments"][0]["sale_id"], "o-1");
  EXPECT_EQ(declined["payments"][0]["terminal_id"], "T02");
  EXPECT_EQ(declined["payments"][0]["amount"], "120.00");
  EXPECT_EQ(declined["payments"][0]["state"], "declined");
  EXPECT_EQ(declined["payments"][0]["age_s"], 0);
  EXPECT_EQ(Body(Call("GET", "/v1/offline-payments?state=approved"))["payments"].size(), 1u);
  EXPECT_EQ(Body(Call("GET", "/v1/offline-payments?state=all"))["payments"].size(), 2u);
  EXPECT_EQ(Body(Call("GET", "/v1/offline-payments"))["payments"].size(), 0u);
}

TEST_F(OfflineApiTest, BadAuthorizationsAreClear4xxAndStoreNothing) {
  ASSERT_EQ(Call("POST", "/v1/sales", OfflineSale("o-1", "T02", "10.00"), kTokenTwo).status, 201);
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("cash-1", "T02"), kTokenTwo).status, 201);
  const size_t stored = journal_.size();
  Response unknown =
      Call("POST", "/v1/sales/nope/payments/0/authorization", Outcome("a", "approved"));
  EXPECT_EQ(unknown.status, 404);
  Response unknown_terminal =
      Call("POST", "/v1/sales/nope/payments/0/authorization", Outcome("a", "approved"), kTokenTwo);
  EXPECT_EQ(unknown_terminal.status, 404);
  Response index = Call("POST", "/v1/sales/o-1/payments/1/authorization", Outcome("a", "approved"));
  EXPECT_EQ(index.status, 422);
  EXPECT_EQ(FieldOf(index), "payment_index");
  Response cash =
      Call("POST", "/v1/sales/cash-1/payments/0/authorization", Outcome("a", "approved"));
  EXPECT_EQ(cash.status, 422);
  Response result =
      Call("POST", "/v1/sales/o-1/payments/0/authorization", R"({"id":"a","result":"maybe"})");
  EXPECT_GE(result.status, 400);
  EXPECT_LT(result.status, 500);
  EXPECT_EQ(Call("POST", "/v1/sales/o-1/payments/0/authorization", "{not json").status, 400);
  EXPECT_EQ(Call("POST", "/v1/sales/o-1/payments/x/authorization", Outcome("a", "approved")).status,
            404);
  EXPECT_EQ(
      Call("POST", "/v1/sales/o-1/payments/-1/authorization", Outcome("a", "approved")).status,
      404);
  EXPECT_EQ(Call("POST", "/v1/sales/o-1/payments/0/other", Outcome("a", "approved")).status, 404);
  EXPECT_EQ(Call("GET", "/v1/sales/o-1/payments/0/authorization").status, 405);
  EXPECT_EQ(Call("GET", "/v1/offline-payments?state=lost").status, 422);
  EXPECT_EQ(Call("GET", "/v1/offline-payments?limit=0").status, 422);
  EXPECT_EQ(journal_.size(), stored);
  // A terminal token cannot read the manager's offline views.
  EXPECT_EQ(Call("GET", "/v1/offline-payments", {}, kTokenTwo).status, 403);
  EXPECT_EQ(Call("GET", "/v1/offline", {}, kTokenTwo).status, 403);
  EXPECT_EQ(Call("GET", "/v1/alerts", {}, kTokenTwo).status, 403);
  EXPECT_EQ(Call("GET", "/v1/alerts", {}, "").status, 401);
}

TEST_F(OfflineApiTest, AlertsRaiseWithFiguresAndClearByThemselves) {
  EXPECT_EQ(Body(Call("GET", "/v1/alerts"))["alerts"].size(), 0u);
  ASSERT_EQ(Call("POST", "/v1/sales", OfflineSale("o-1", "T02", "150.00"), kTokenTwo).status, 201);
  ASSERT_EQ(Call("POST", "/v1/sales", OfflineSale("o-2", "T01", "100.00")).status, 201);
  const int64_t raised_at = clock_.NowMs();
  json alerts = Body(Call("GET", "/v1/alerts"))["alerts"];
  ASSERT_EQ(alerts.size(), 1u) << alerts.dump();  // store 250/300 = 83 %; T02 150/200 = 75 %
  EXPECT_EQ(alerts[0]["code"], "offline_exposure_store_high");
  EXPECT_EQ(alerts[0]["severity"], "warning");
  EXPECT_EQ(alerts[0]["exposure"], "250.00");
  EXPECT_EQ(alerts[0]["limit"], "300.00");
  EXPECT_EQ(alerts[0]["remaining"], "50.00");
  EXPECT_EQ(alerts[0]["since"], core::FormatRfc3339(raised_at));
  // Two hours later the same alert keeps its since; the payments are now overdue.
  clock_.Advance(2 * 3600 * 1000 + 1000);
  json status = Body(Call("GET", "/v1/status"));
  alerts = status["alerts"];
  ASSERT_EQ(alerts.size(), 2u) << alerts.dump();
  EXPECT_EQ(alerts[0]["code"], "offline_exposure_store_high");
  EXPECT_EQ(alerts[0]["since"], core::FormatRfc3339(raised_at));
  EXPECT_EQ(alerts[1]["code"], "offline_payment_overdue");
  EXPECT_EQ(alerts[1]["overdue"], 2);
  EXPECT_EQ(alerts[1]["max_age_h"], 2);
  EXPECT_EQ(status["offline"]["store"]["exposure"], "250.00");
  EXPECT_NE(metrics_.RenderText().find("machub_alert{code=\"offline_payment_overdue\"} 1"),
            std::string::npos);
  // Outcomes clear both.
  ASSERT_EQ(
      Call("POST", "/v1/sales/o-1/payments/0/authorization", Outcome("a-1", "approved"), kTokenTwo)
          .status,
      201);
  ASSERT_EQ(
      Call("POST", "/v1/sales/o-2/payments/0/authorization", Outcome("a-2", "approved")).status,
      201);
  EXPECT_EQ(Body(Call("GET", "/v1/alerts"))["alerts"].size(), 0u);
  EXPECT_NE(metrics_.RenderText().find("machub_alert{code=\"offline_payment_overdue\"} 0"),
            std::string::npos);
}

TEST_F(OfflineApiTest, ProvidedAlertsJoinTheListAndKeepTheirSince) {
  bool backlog_old = true;
  StatusProviders providers;
  providers.alerts = [&backlog_old] {
    return backlog_old
               ? json::parse(R"([{"code":"backlog_old","severity":"warning","age_s":1900}])")
               : json::array();
  };
  Build(DefaultOptions(), std::move(providers));
  json alerts = Body(Call("GET", "/v1/alerts"))["alerts"];
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0]["code"], "backlog_old");
  EXPECT_EQ(alerts[0]["age_s"], 1900);
  const std::string since = alerts[0]["since"];
  clock_.Advance(60'000);
  EXPECT_EQ(Body(Call("GET", "/v1/alerts"))["alerts"][0]["since"], since);
  backlog_old = false;
  EXPECT_EQ(Body(Call("GET", "/v1/alerts"))["alerts"].size(), 0u);
}

TEST_F(OfflineApiTest, VoidReleasesAndDisabledRefuses) {
  ASSERT_EQ(Call("POST", "/v1/sales", OfflineSale("o-1", "T02", "150.00"), kTokenTwo).status, 201);
  json v = json::parse(OfflineSale("v-1", "T02", "150.00"));
  v["type"] = "void";
  v["ref"] = "o-1";
  v["payments"][0].erase("offline");
  Response voided = Call("POST", "/v1/sales", v.dump(), kTokenTwo);
  ASSERT_EQ(voided.status, 201) << voided.body;
  EXPECT_EQ(Body(Call("GET", "/v1/offline"))["store"]["exposure"], "0.00");
  EXPECT_EQ(Body(Call("GET", "/v1/offline-payments?state=voided"))["payments"].size(), 1u);
  journal::OfflineLimits off;
  off.enabled = false;
  journal_.SetOfflineLimits(off);
  Response refused = Call("POST", "/v1/sales", OfflineSale("o-2", "T02", "1.00"), kTokenTwo);
  EXPECT_EQ(refused.status, 422);
  EXPECT_EQ(Body(refused)["error"]["limit"], "offline.enabled");
  EXPECT_FALSE(Body(Call("GET", "/v1/offline"))["enabled"]);
}

TEST(ServiceAlerts, EachRaisesOnItsCauseAndNotOtherwise) {
  const int64_t now = 1'795'774'500'000;
  ServiceAlertInputs in;
  in.now_ms = now;
  in.started_at_ms = now - 3600'000;
  in.min_free_disk_bytes = 256 << 20;
  in.free_disk_bytes = int64_t{1} << 30;
  in.cloud_json = json{{"state", "ok"},
                       {"last_success_at", core::FormatRfc3339(now - 1000)},
                       {"last_error", nullptr},
                       {"last_error_at", nullptr},
                       {"quarantined", 0}};
  in.backlog_json =
      json{{"sales", 3}, {"bytes", 900}, {"oldest_sale_at", core::FormatRfc3339(now - 60'000)}};
  EXPECT_EQ(ServiceAlertsJson(in).dump(), "[]");

  in.backlog_json = json{
      {"sales", 3}, {"bytes", 900}, {"oldest_sale_at", core::FormatRfc3339(now - 31 * 60'000)}};
  in.cloud_json = json{{"state", "retrying"},
                       {"last_success_at", core::FormatRfc3339(now - 16 * 60'000)},
                       {"last_error", "connect refused"},
                       {"last_error_at", core::FormatRfc3339(now - 5000)},
                       {"quarantined", 2}};
  in.free_disk_bytes = 100 << 20;
  json alerts = json(ServiceAlertsJson(in));
  ASSERT_EQ(alerts.size(), 4u) << alerts.dump();
  EXPECT_EQ(alerts[0]["code"], "backlog_old");
  EXPECT_EQ(alerts[0]["age_s"], 31 * 60);
  EXPECT_EQ(alerts[0]["sales"], 3);
  EXPECT_EQ(alerts[1]["code"], "uploads_failing");
  EXPECT_EQ(alerts[1]["last_error"], "connect refused");
  EXPECT_EQ(alerts[2]["code"], "batches_quarantined");
  EXPECT_EQ(alerts[2]["batches"], 2);
  EXPECT_EQ(alerts[3]["code"], "disk_low");
  EXPECT_EQ(alerts[3]["threshold_bytes"], 256 << 20);

  // Failing for only 10 minutes: not yet; malformed blocks raise nothing.
  in.cloud_json = json{{"state", "retrying"},
                       {"last_success_at", core::FormatRfc3339(now - 10 * 60'000)},
                       {"last_error_at", core::FormatRfc3339(now - 5000)}};
  in.backlog_json = "not json";
  in.free_disk_bytes.reset();
  EXPECT_EQ(ServiceAlertsJson(in).dump(), "[]");
}

TEST(ServiceAlerts, ClockUntrustedAndSkewRaiseOnTheirCausesAndClear) {
  const int64_t now = 1'795'774'500'000;
  ServiceAlertInputs in;
  in.now_ms = now;
  in.started_at_ms = now;
  ClockInputs clock;
  clock.now_ms = now;
  clock.newest_received_at_ms = now - 5'000;
  clock.kernel_synchronized = false;  // ignored while require_sync is off
  clock.cloud_offset_ms = 0;
  clock.skew_bound_ms = 300'000;
  in.clock = clock;
  EXPECT_EQ(ServiceAlertsJson(in).dump(), "[]");
  json st = json(ClockStatusJson(clock));
  EXPECT_TRUE(st["trusted"]);
  EXPECT_EQ(st["kernel_synchronized"], false);
  EXPECT_EQ(st["newest_entry_at"], core::FormatRfc3339(now - 5'000));

  // Behind the newest entry by an hour (booted with a stale clock), 3 entries held.
  clock.newest_received_at_ms = now + 3'600'000;
  clock.held_entries = 3;
  in.clock = clock;
  json alerts = json(ServiceAlertsJson(in));
  ASSERT_EQ(alerts.size(), 1u) << alerts.dump();
  EXPECT_EQ(alerts[0]["code"], "clock_untrusted");
  EXPECT_EQ(alerts[0]["severity"], "critical");
  EXPECT_EQ(alerts[0]["reasons"], json::array({"behind_journal"}));
  EXPECT_EQ(alerts[0]["behind_s"], 3600);
  EXPECT_EQ(alerts[0]["held_entries"], 3);
  EXPECT_FALSE(json(ClockStatusJson(clock))["trusted"]);
  // Within a second of the newest entry is not "behind" (one group shares a reading).
  clock.newest_received_at_ms = now + 1'000;
  in.clock = clock;
  EXPECT_EQ(ServiceAlertsJson(in).dump(), "[]");

  // The kernel's flag counts once clock.require_sync is on; unknown (nullopt) does not.
  clock.require_sync = true;
  in.clock = clock;
  alerts = json(ServiceAlertsJson(in));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0]["reasons"], json::array({"kernel_unsynchronized"}));
  clock.kernel_synchronized.reset();
  in.clock = clock;
  EXPECT_EQ(ServiceAlertsJson(in).dump(), "[]");
  clock.kernel_synchronized = true;

  // The S3 endpoint's clock 10 minutes ahead of ours: skew, over the 5-minute bound.
  clock.cloud_offset_ms = 600'000;
  in.clock = clock;
  alerts = json(ServiceAlertsJson(in));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0]["code"], "clock_skew");
  EXPECT_EQ(alerts[0]["offset_s"], 600);
  EXPECT_EQ(alerts[0]["bound_s"], 300);
  clock.cloud_offset_ms = -299'000;  // within the bound, either sign
  in.clock = clock;
  EXPECT_EQ(ServiceAlertsJson(in).dump(), "[]");
  clock.cloud_offset_ms = -301'000;
  in.clock = clock;
  EXPECT_EQ(json(ServiceAlertsJson(in)).size(), 1u);
  clock.cloud_offset_ms.reset();  // no S3 target: nothing to compare with
  in.clock = clock;
  EXPECT_EQ(ServiceAlertsJson(in).dump(), "[]");
}

}  // namespace
}  // namespace machub::http
