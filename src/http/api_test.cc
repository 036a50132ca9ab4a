#include "http/api.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/report.h"
#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/time_format.h"
#include "http/alerts.h"
#include "http/api_error.h"
#include "http/auth.h"
#include "http/rate_limiter.h"
#include "http/test_util.h"
#include "journal/sqlite_journal.h"
#include "manual_clock.h"
#include "memory_journal.h"

namespace machub::http {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// The in-memory journal of tests/support: the real one's idempotency, refund, drawer and
// Z report rules; answers synchronously on the calling thread. SetFailure makes every
// call fail with that status.
using FakeJournal = machub::testing::MemoryJournal;

std::string SaleBody(std::string_view id, std::string_view terminal = "T01",
                     std::string_view qty = "2") {
  json body = {{"id", id},
               {"terminal_id", terminal},
               {"type", "sale"},
               {"created_at", "2026-11-27T10:15:00Z"},
               {"currency", "USD"},
               {"lines",
                {{{"sku", "0001"},
                  {"name", "Coffee"},
                  {"qty", qty},
                  {"unit_price", "3.50"},
                  {"discount", "0.00"},
                  {"tax_rate", "0.0825"}}}},
               {"payments", {{{"method", "cash"}, {"amount", "8.00"}}}}};
  return body.dump();
}

constexpr char kTokenOne[] = "token-one-secret";
constexpr char kTokenOneRotated[] = "token-one-rotated";
constexpr char kTokenTwo[] = "token-two-secret";

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override { Build(DefaultOptions()); }

  static ApiOptions DefaultOptions() {
    ApiOptions options;
    options.store_id = "S042";
    // T01 holds manager tokens (status, metrics, lists); T02 a terminal token.
    options.tokens = {{"T01", HashToken(kTokenOne), 0, Role::kManager},
                      {"T01", HashToken(kTokenOneRotated), 0, Role::kManager},
                      {"T02", HashToken(kTokenTwo)}};
    options.rate_per_terminal = 0;  // unlimited unless a test says otherwise
    options.list_limit_max = 50;
    return options;
  }

  void Build(ApiOptions options, StatusProviders providers = {}) {
    api_ = std::make_unique<ApiHandler>(std::move(options), &journal_, &metrics_, &clock_,
                                        std::move(providers));
  }

  Response Call(std::string method, std::string target, std::string body = {},
                std::string_view token = kTokenOne,
                std::vector<std::pair<std::string, std::string>> extra = {}) {
    Request request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.remote_address = "192.0.2.7";
    if (!token.empty())
      request.headers.emplace_back("authorization", "Bearer " + std::string(token));
    for (auto& h : extra) request.headers.push_back(std::move(h));
    auto promise = std::make_shared<std::promise<Response>>();
    auto future = promise->get_future();
    api_->Handle(std::move(request),
                 [promise](Response response) { promise->set_value(std::move(response)); });
    EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
    return future.get();
  }

  static std::string HeaderOf(const Response& r, std::string_view name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return "<none>";
  }
  static std::string CodeOf(const Response& r) {
    json body = json::parse(r.body, nullptr, false);
    if (body.is_discarded() || !body.contains("error")) return "<no error>";
    return body["error"]["code"];
  }
  static std::string FieldOf(const Response& r) {
    json body = json::parse(r.body, nullptr, false);
    if (body.is_discarded() || !body["error"].contains("field")) return "<no field>";
    return body["error"]["field"];
  }

  machub::testing::ManualClock clock_{1'795'774'500'000};  // 2026-11-27T...
  FakeJournal journal_{&clock_};
  core::MetricsRegistry metrics_;
  std::unique_ptr<ApiHandler> api_;
};

TEST_F(ApiTest, PostCreatesThenReplayAnswersTheIdenticalBody) {
  Response created = Call("POST", "/v1/sales", SaleBody("s-1"));
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.content_type, "application/json");
  EXPECT_EQ(HeaderOf(created, "Cache-Control"), "no-store");
  json body = json::parse(created.body);
  EXPECT_EQ(body["id"], "s-1");
  EXPECT_EQ(body["seq"], 1);
  EXPECT_EQ(body["receipt_no"], "T01-100001");
  EXPECT_EQ(body["total"], "7.58");
  EXPECT_EQ(body["change"], "0.42");
  EXPECT_EQ(body["hash"].get<std::string>().size(), 64u);
  EXPECT_EQ(body["received_at"], core::FormatRfc3339(clock_.NowMs()));
  // Key order is part of "byte-identical": check the layout once.
  EXPECT_EQ(created.body.rfind("{\"id\":\"s-1\",\"seq\":1,\"receipt_no\":", 0), 0u);

  clock_.Advance(60'000);
  // Same sale, other formatting and key order: a replay.
  json same = json::parse(SaleBody("s-1"));
  same["lines"][0]["unit_price"] = "3.5";
  Response replay = Call("POST", "/v1/sales", same.dump(2), kTokenOneRotated);
  EXPECT_EQ(replay.status, 200);
  EXPECT_EQ(replay.body, created.body);
}

TEST_F(ApiTest, SameIdOtherBodyIs409) {
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("s-1")).status, 201);
  Response conflict = Call("POST", "/v1/sales", SaleBody("s-1", "T01", "1"));
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(CodeOf(conflict), "id_conflict");
}

TEST_F(ApiTest, ValidationErrorsAre400And422WithField) {
  Response not_json = Call("POST", "/v1/sales", "{not json");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(CodeOf(not_json), "invalid_json");

  json missing = json::parse(SaleBody("s-2"));
  missing.erase("currency");
  Response r = Call("POST", "/v1/sales", missing.dump());
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(CodeOf(r), "missing_field");
  EXPECT_EQ(FieldOf(r), "currency");

  json bad_qty = json::parse(SaleBody("s-3"));
  bad_qty["lines"][0]["qty"] = "-1";
  r = Call("POST", "/v1/sales", bad_qty.dump());
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(CodeOf(r), "invalid_field");
  EXPECT_EQ(FieldOf(r), "lines[0].qty");

  json wrong_total = json::parse(SaleBody("s-4"));
  wrong_total["total"] = "7.57";
  r = Call("POST", "/v1/sales", wrong_total.dump());
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(CodeOf(r), "total_mismatch");

  json card = json::parse(SaleBody("s-5"));
  card["payments"] = {{{"method", "card"}, {"amount", "8.00"}, {"card_token", "4111111111111111"}}};
  r = Call("POST", "/v1/sales", card.dump());
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(CodeOf(r), "card_number_forbidden");
  EXPECT_EQ(r.body.find("4111111111111111"), std::string::npos);
  EXPECT_EQ(journal_.appends(), 0);
}

TEST_F(ApiTest, MissingOrUnknownTokenIs401AndNeverEchoed) {
  Response missing = Call("GET", "/v1/status", {}, "");
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(CodeOf(missing), "unauthorized");
  EXPECT_EQ(HeaderOf(missing, "WWW-Authenticate"), "Bearer");

  Response unknown = Call("POST", "/v1/sales", SaleBody("s-1"), "guessed-token-123");
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(unknown.body.find("guessed-token-123"), std::string::npos);

  Response basic =
      Call("GET", "/v1/status", {}, "", {{"authorization", std::string("Basic ") + kTokenOne}});
  EXPECT_EQ(basic.status, 401);
  // A token with the right prefix but different length must not pass either.
  Response prefix = Call("GET", "/v1/status", {}, "token-one");
  EXPECT_EQ(prefix.status, 401);
  // The scheme is case-insensitive.
  Response lower =
      Call("GET", "/v1/status", {}, "", {{"authorization", std::string("bearer  ") + kTokenOne}});
  EXPECT_EQ(lower.status, 200);
  EXPECT_EQ(journal_.appends(), 0);
  EXPECT_NE(metrics_.RenderText().find("machub_http_auth_failures_total{reason=\"missing\"}"),
            std::string::npos);
}

TEST_F(ApiTest, TokenOfAnotherTerminalIs403) {
  Response r = Call("POST", "/v1/sales", SaleBody("s-1", "T01"), kTokenTwo);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(CodeOf(r), "forbidden");
  EXPECT_EQ(FieldOf(r), "terminal_id");
  EXPECT_EQ(journal_.appends(), 0);
  // GETs accept any valid token.
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("s-1", "T01")).status, 201);
  EXPECT_EQ(Call("GET", "/v1/sales/s-1", {}, kTokenTwo).status, 200);
}

TEST_F(ApiTest, StorageFailureIs503AndHealthzFollowsTheJournal) {
  Response ok = Call("GET", "/healthz", {}, "");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, R"({"status":"ok"})");

  journal_.SetFailure(Status(ErrorCode::kStorageUnavailable, "disk full: /var/lib/x"));
  Response post = Call("POST", "/v1/sales", SaleBody("s-1"));
  EXPECT_EQ(post.status, 503);
  EXPECT_EQ(CodeOf(post), "storage_unavailable");
  Response health = Call("GET", "/healthz", {}, "");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(CodeOf(health), "storage_unavailable");

  // Internal errors are answered generically: no paths or SQL leak.
  journal_.SetFailure(Status(ErrorCode::kIoError, "open /var/lib/machub/secret.db failed"));
  Response get = Call("GET", "/v1/sales/s-1");
  EXPECT_EQ(get.status, 500);
  EXPECT_EQ(CodeOf(get), "internal");
  EXPECT_EQ(get.body.find("secret.db"), std::string::npos);

  // Status still answers, with the journal marked unhealthy.
  json status = json::parse(Call("GET", "/v1/status").body);
  EXPECT_EQ(status["journal"]["healthy"], false);
  EXPECT_TRUE(status["journal"]["last_seq"].is_null());
}

TEST_F(ApiTest, RateLimitPerTerminalIs429WithRetryAfter) {
  ApiOptions options = DefaultOptions();
  options.rate_per_terminal = 1;
  options.rate_burst = 2;
  Build(options);
  EXPECT_EQ(Call("GET", "/v1/status").status, 200);
  EXPECT_EQ(Call("GET", "/v1/status", {}, kTokenOneRotated).status, 200);  // same terminal
  Response limited = Call("POST", "/v1/sales", "not even json");
  EXPECT_EQ(limited.status, 429);  // checked before the body is decoded
  EXPECT_EQ(CodeOf(limited), "rate_limited");
  EXPECT_EQ(HeaderOf(limited, "Retry-After"), "1");
  // Another terminal has its own bucket; /healthz is not limited.
  EXPECT_EQ(Call("GET", "/v1/sales/none", {}, kTokenTwo).status, 404);
  EXPECT_EQ(Call("GET", "/healthz", {}, "").status, 200);
  clock_.Advance(1000);
  EXPECT_EQ(Call("GET", "/v1/status").status, 200);
  EXPECT_EQ(Call("GET", "/v1/status").status, 429);
  EXPECT_NE(metrics_.RenderText().find("machub_http_rate_limited_total{terminal=\"T01\"} 2"),
            std::string::npos);
}

TEST_F(ApiTest, GetSaleAndNotFound) {
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("s:1")).status, 201);
  Response found = Call("GET", "/v1/sales/s:1");
  ASSERT_EQ(found.status, 200);
  json sale = json::parse(found.body);
  EXPECT_EQ(sale["id"], "s:1");
  EXPECT_EQ(sale["seq"], 1);
  // Percent-encoded ids are decoded.
  EXPECT_EQ(Call("GET", "/v1/sales/s%3A1").status, 200);
  Response missing = Call("GET", "/v1/sales/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(CodeOf(missing), "not_found");
  EXPECT_EQ(Call("GET", "/v1/sales/a/b").status, 404);
  EXPECT_EQ(Call("GET", "/v1/sales/%zz").status, 404);
}

TEST_F(ApiTest, ListPagesInSequenceOrder) {
  for (int i = 1; i <= 5; ++i) {
    ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("s-" + std::to_string(i))).status, 201);
  }
  json page = json::parse(Call("GET", "/v1/sales?limit=2").body);
  ASSERT_EQ(page["sales"].size(), 2u);
  EXPECT_EQ(page["sales"][0]["seq"], 1);
  EXPECT_EQ(page["next_after_seq"], 2);
  page = json::parse(Call("GET", "/v1/sales?after_seq=2&limit=10").body);
  ASSERT_EQ(page["sales"].size(), 3u);
  EXPECT_EQ(page["sales"][0]["id"], "s-3");
  EXPECT_EQ(page["next_after_seq"], 5);
  page = json::parse(Call("GET", "/v1/sales?after_seq=5").body);
  EXPECT_EQ(page["sales"].size(), 0u);
  EXPECT_EQ(page["next_after_seq"], 5);
  EXPECT_EQ(journal_.last_list_limit(), 50);  // default 100, capped at list_limit_max
  Call("GET", "/v1/sales?limit=100000");
  EXPECT_EQ(journal_.last_list_limit(), 50);

  for (const char* target : {"/v1/sales?after_seq=-1", "/v1/sales?after_seq=abc",
                             "/v1/sales?after_seq=99999999999999999999", "/v1/sales?after_seq="}) {
    Response r = Call("GET", target);
    EXPECT_EQ(r.status, 422) << target;
    EXPECT_EQ(CodeOf(r), "invalid_field");
    EXPECT_EQ(FieldOf(r), "after_seq") << target;
  }
  for (const char* target : {"/v1/sales?limit=0", "/v1/sales?limit=1.5", "/v1/sales?limit=+3"}) {
    Response r = Call("GET", target);
    EXPECT_EQ(r.status, 422) << target;
    EXPECT_EQ(FieldOf(r), "limit") << target;
  }
}

TEST_F(ApiTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  Response unknown = Call("GET", "/v2/whatever");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(CodeOf(unknown), "not_found");

  Response del = Call("DELETE", "/v1/sales/s-1");
  EXPECT_EQ(del.status, 405);
  EXPECT_EQ(CodeOf(del), "method_not_allowed");
  EXPECT_EQ(HeaderOf(del, "Allow"), "GET");
  Response put = Call("PUT", "/v1/sales");
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(HeaderOf(put, "Allow"), "GET, POST");
  EXPECT_EQ(Call("POST", "/healthz", "", "").status, 405);
}

TEST_F(ApiTest, StatusHasEveryBlock) {
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("s-1")).status, 201);
  clock_.Advance(90'000);
  Response r = Call("GET", "/v1/status");
  ASSERT_EQ(r.status, 200);
  json status = json::parse(r.body);
  EXPECT_EQ(status["store_id"], "S042");
  EXPECT_EQ(status["version"], MACHUB_VERSION);
  EXPECT_EQ(status["uptime_s"], 90);
  EXPECT_EQ(status["cloud"]["state"], "disabled");
  EXPECT_TRUE(status["cloud"]["last_success_at"].is_null());
  EXPECT_EQ(status["backlog"]["sales"], 0);
  EXPECT_EQ(status["journal"]["last_seq"], 1);
  EXPECT_EQ(status["journal"]["sales"], 1);
  EXPECT_EQ(status["journal"]["healthy"], true);
  EXPECT_TRUE(status["catalog"]["version"].is_null());

  StatusProviders providers;
  providers.cloud = [] { return json::parse(R"({"state":"online","last_success_at":"x"})"); };
  providers.backlog = [] { return json("not an object"); };
  providers.catalog = [] { return json::parse(R"({"version":"v7","fetched_at":null})"); };
  Build(DefaultOptions(), providers);
  status = json::parse(api_->StatusJson());
  EXPECT_EQ(status["cloud"]["state"], "online");
  EXPECT_EQ(status["backlog"]["sales"], 0);  // broken provider: the default block
  EXPECT_EQ(status["catalog"]["version"], "v7");
}

TEST_F(ApiTest, MetricsNeedATokenUnlessPublic) {
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("s-1")).status, 201);
  Call("GET", "/v1/sales/zzz");
  EXPECT_EQ(Call("GET", "/metrics", {}, "").status, 401);
  Response metrics = Call("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics.body.find("machub_http_requests_total{route=\"/v1/sales\",status=\"201\"} 1"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(
      metrics.body.find("machub_http_requests_total{route=\"/v1/sales/{id}\",status=\"404\"} 1"),
      std::string::npos);
  EXPECT_EQ(metrics.body.find("zzz"), std::string::npos);  // never the raw path
  EXPECT_NE(metrics.body.find("machub_http_request_duration_seconds_bucket{route=\"/v1/sales\""),
            std::string::npos);

  ApiOptions options = DefaultOptions();
  options.metrics_public = true;
  Build(options);
  api_->SetConnectionsSource([] { return 7; });
  Response open = Call("GET", "/metrics", {}, "");
  EXPECT_EQ(open.status, 200);
  EXPECT_NE(open.body.find("machub_http_connections 7"), std::string::npos);
}

TEST_F(ApiTest, DashboardIsServedWithoutToken) {
  Response r = Call("GET", "/", {}, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("<title>machub</title>"), std::string::npos);
  // The script is its own resource: no inline script, and the policy allows none.
  EXPECT_NE(r.body.find(R"(<script src="/dashboard.js"></script>)"), std::string::npos);
  EXPECT_EQ(r.body.find("sessionStorage"), std::string::npos);
  const std::string csp = HeaderOf(r, "Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self';"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline'; style"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("script-src 'unsafe-inline'"), std::string::npos) << csp;

  Response js = Call("GET", "/dashboard.js", {}, "");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_TRUE(js.body.starts_with("\"use strict\";")) << js.body.substr(0, 40);
  EXPECT_NE(js.body.find("sessionStorage"), std::string::npos);
  // The store's day: today's figures, open drawers and the last Z report.
  for (const char* used : {"\"/v1/reports/x\"", "\"/v1/reports/z/last\"", "open_drawers"}) {
    EXPECT_NE(js.body.find(used), std::string::npos) << used;
  }
  for (const char* id :
       {"id=\"methods\"", "id=\"terminals\"", "id=\"drawers\"", "id=\"z_number\""}) {
    EXPECT_NE(r.body.find(id), std::string::npos) << id;
  }
  EXPECT_EQ(js.body.find("innerHTML"), std::string::npos);  // values go in as text only
  EXPECT_EQ(HeaderOf(js, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(Call("POST", "/dashboard.js", "x", "").status, 405);
}

TEST(ApiErrorTest, MappingIsComplete) {
  EXPECT_EQ(HttpStatusFor(ErrorCode::kInvalidJson), 400);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kInvalidField), 422);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kMissingField), 422);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kTotalMismatch), 422);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kCardNumberForbidden), 422);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kUnauthorized), 401);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kForbidden), 403);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kIdConflict), 409);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kPayloadTooLarge), 413);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kRateLimited), 429);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kStorageUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kInvalidArgument), 500);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kIoError), 500);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kUnavailable), 500);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kInternal), 500);

  EXPECT_EQ(ErrorBody(Status(ErrorCode::kInvalidField, "bad qty", "lines[0].qty")),
            R"({"error":{"code":"invalid_field","message":"bad qty","field":"lines[0].qty"}})");
  EXPECT_EQ(ErrorBody(Status(ErrorCode::kNotFound, "nope")),
            R"({"error":{"code":"not_found","message":"nope"}})");
  EXPECT_EQ(ErrorBody(Status(ErrorCode::kInternal, "sqlite: table x")),
            R"({"error":{"code":"internal","message":"internal error"}})");
  // Invalid UTF-8 in a message is replaced, not thrown.
  EXPECT_NE(ErrorBody("bad_request", "bad \xff byte").find("bad"), std::string::npos);
}

TEST(AuthTest, HashTokenIsSha256Hex) {
  EXPECT_EQ(HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AuthTest, BearerParsingAndUpperCaseHashes) {
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("  BEARER   abc  "), "abc");
  EXPECT_EQ(BearerToken("Bearer"), "");
  EXPECT_EQ(BearerToken("Bearer "), "");
  EXPECT_EQ(BearerToken("Bearerabc"), "");
  EXPECT_EQ(BearerToken("Basic abc"), "");
  std::string upper = HashToken("tok");
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  TokenAuthenticator auth({{"T9", upper}, {"T8", "short"}});
  Result<Principal> t = auth.Authenticate("Bearer tok");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->terminal_id, "T9");
  EXPECT_EQ(t->role, Role::kTerminal);
  TokenAuthenticator managers({{"M1", HashToken("boss"), 0, Role::kManager}});
  EXPECT_EQ(managers.Authenticate("Bearer boss")->role, Role::kManager);
  EXPECT_EQ(auth.Authenticate("Bearer short").status().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(auth.Authenticate("").status().message(), "missing bearer token");
}

TEST_F(ApiTest, CardNumberAsPaymentAmountIsRefused) {
  json sale = json::parse(SaleBody("amount-card"));
  sale["payments"][0]["amount"] = "4222222222222";  // 13-digit Visa test number
  Response r = Call("POST", "/v1/sales", sale.dump());
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(CodeOf(r), "card_number_forbidden");
  EXPECT_EQ(FieldOf(r), "payments[0].amount");
  EXPECT_EQ(r.body.find("4222222222222"), std::string::npos) << r.body;
  EXPECT_EQ(Call("GET", "/v1/sales/amount-card").status, 404);
  sale["payments"][0]["amount"] = "4222222222222.00";
  EXPECT_EQ(CodeOf(Call("POST", "/v1/sales", sale.dump())), "card_number_forbidden");
  sale["payments"][0]["amount"] = "1000000.00";  // large, but no card number
  EXPECT_EQ(Call("POST", "/v1/sales", sale.dump()).status, 201);
}

TEST_F(ApiTest, TerminalTokensAreRefusedOnManagerRoutes) {
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("m-1", "T01")).status, 201);
  // A terminal token: its own entries, one sale by id (for a refund), nothing more.
  EXPECT_EQ(Call("POST", "/v1/sales", SaleBody("m-2", "T02"), kTokenTwo).status, 201);
  EXPECT_EQ(Call("GET", "/v1/sales/m-1", {}, kTokenTwo).status, 200);  // another terminal's
  for (const char* target : {"/v1/status", "/v1/sales?after_seq=0", "/v1/sales", "/metrics"}) {
    Response r = Call("GET", target, {}, kTokenTwo);
    EXPECT_EQ(r.status, 403) << target;
    EXPECT_EQ(CodeOf(r), "forbidden") << target;
    EXPECT_NE(r.body.find("manager token"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find(kTokenTwo), std::string::npos);
  }
  EXPECT_EQ(journal_.appends(), 2);  // the refusals stored nothing
  EXPECT_NE(
      metrics_.RenderText().find("machub_http_auth_failures_total{reason=\"needs_manager\"} 4"),
      std::string::npos);
  // A manager token: everything.
  for (const char* target : {"/v1/status", "/v1/sales?after_seq=0", "/metrics", "/v1/sales/m-2"}) {
    EXPECT_EQ(Call("GET", target).status, 200) << target;
  }
  // metrics_public opens /metrics to anyone, terminal tokens included.
  ApiOptions options = DefaultOptions();
  options.metrics_public = true;
  Build(options);
  EXPECT_EQ(Call("GET", "/metrics", {}, kTokenTwo).status, 200);
  EXPECT_EQ(Call("GET", "/metrics", {}, "").status, 200);
  EXPECT_EQ(Call("GET", "/v1/status", {}, kTokenTwo).status, 403);
}

TEST(TokenAuthenticatorTest, ExpiredEntriesAreRefusedAndLiveDuplicatesWin) {
  const int64_t now = 1'795'774'500'000;
  TokenAuthenticator auth({{"T01", HashToken("old"), now},       // expires exactly now
                           {"T01", HashToken("new"), now + 1},   // one more millisecond
                           {"T02", HashToken("both"), now - 5},  // expired entry ...
                           {"T02", HashToken("both"), 0}});      // ... and a live one
  Result<Principal> old_token = auth.Authenticate("Bearer old", now - 1);
  ASSERT_TRUE(old_token.ok());
  EXPECT_EQ(old_token->terminal_id, "T01");
  EXPECT_EQ(auth.Authenticate("Bearer old", now).status().message(), "token expired");
  EXPECT_EQ(auth.Authenticate("Bearer old", now).status().code(), ErrorCode::kUnauthorized);
  EXPECT_TRUE(auth.Authenticate("Bearer new", now).ok());
  EXPECT_FALSE(auth.Authenticate("Bearer new", now + 1).ok());
  EXPECT_TRUE(auth.Authenticate("Bearer both", now + 1'000'000).ok());
  EXPECT_EQ(auth.Authenticate("Bearer other", now).status().message(), "unknown token");
}

TEST(TokenAuthenticatorTest, EveryOneOfThousandsOfTokensIsFoundAndOrderBreaksTies) {
  // The lookup is a binary search over sorted digests: every configured token must be found
  // wherever it sorts, and for one hash configured twice the first live entry in
  // configuration order wins, as with the old linear scan.
  std::vector<TerminalToken> tokens;
  for (int i = 0; i < 3000; ++i) {
    tokens.push_back({"T" + std::to_string(i), HashToken("tok-" + std::to_string(i))});
  }
  tokens.push_back({"SECOND", HashToken("tok-1234")});         // the same token, later in the list
  tokens.push_back({"BAD", "zz" + HashToken("x").substr(2)});  // not hex: never matches
  TokenAuthenticator auth(tokens);
  for (int i = 0; i < 3000; ++i) {
    Result<Principal> p = auth.Authenticate("Bearer tok-" + std::to_string(i), 0);
    ASSERT_TRUE(p.ok()) << i;
    ASSERT_EQ(p->terminal_id, "T" + std::to_string(i));
  }
  EXPECT_EQ(auth.Authenticate("Bearer tok-3000", 0).status().message(), "unknown token");
  EXPECT_EQ(auth.Authenticate("Bearer x", 0).status().message(), "unknown token");
  TokenAuthenticator reversed({{"FIRST", HashToken("same"), 5}, {"LATER", HashToken("same")}});
  EXPECT_EQ(reversed.Authenticate("Bearer same", 4)->terminal_id, "FIRST");
  EXPECT_EQ(reversed.Authenticate("Bearer same", 5)->terminal_id, "LATER");  // first expired
}

TEST_F(ApiTest, ExpiredTokenIs401AndSetTokensRotatesLive) {
  ApiOptions options = DefaultOptions();
  options.tokens = {{"T01", HashToken(kTokenOne), clock_.NowMs() + 1000},
                    {"T01", HashToken(kTokenOneRotated)}};
  Build(options);
  EXPECT_EQ(Call("POST", "/v1/sales", SaleBody("x-1"), kTokenOne).status, 201);
  clock_.Advance(1000);
  Response expired = Call("POST", "/v1/sales", SaleBody("x-2"), kTokenOne);
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(expired.body.find(kTokenOne), std::string::npos);
  EXPECT_NE(expired.body.find("token expired"), std::string::npos) << expired.body;
  EXPECT_EQ(Call("POST", "/v1/sales", SaleBody("x-3"), kTokenOneRotated).status, 201);
  EXPECT_EQ(Call("GET", "/v1/sales/x-2", "", kTokenOneRotated).status, 404);

  api_->SetTokens({{"T02", HashToken(kTokenTwo), 0, Role::kManager}});
  EXPECT_EQ(Call("GET", "/v1/status", "", kTokenOneRotated).status, 401);
  EXPECT_EQ(Call("GET", "/v1/status", "", kTokenTwo).status, 200);
}

TEST_F(ApiTest, ClientCertificateMustNameTheTokensTerminal) {
  auto call = [this](std::string body, std::string_view token, bool verified,
                     std::vector<std::string> identities) {
    Request request;
    request.method = "POST";
    request.target = "/v1/sales";
    request.body = std::move(body);
    request.headers.emplace_back("authorization", "Bearer " + std::string(token));
    request.client_cert_verified = verified;
    request.client_identities = std::move(identities);
    std::promise<Response> promise;
    api_->Handle(std::move(request), [&promise](Response r) { promise.set_value(std::move(r)); });
    return promise.get_future().get();
  };
  EXPECT_EQ(call(SaleBody("c-1"), kTokenOne, true, {"T01"}).status, 201);
  // A SAN may carry the identity too.
  EXPECT_EQ(call(SaleBody("c-2"), kTokenOne, true, {"store-cn", "T01"}).status, 201);
  // Certificate of T01, token and sale of T02.
  Response other = call(SaleBody("c-3", "T02"), kTokenTwo, true, {"T01"});
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(CodeOf(other), "forbidden");
  // Certificate and token of T01, sale of T02.
  EXPECT_EQ(call(SaleBody("c-4", "T02"), kTokenOne, true, {"T01"}).status, 403);
  // A verified certificate without any name matches nothing.
  EXPECT_EQ(call(SaleBody("c-5"), kTokenOne, true, {}).status, 403);
  // Without mutual TLS the identities are not consulted.
  EXPECT_EQ(call(SaleBody("c-6"), kTokenOne, false, {}).status, 201);
  // The token stays required with a certificate.
  EXPECT_EQ(call(SaleBody("c-7"), "", true, {"T01"}).status, 401);
  for (const char* id : {"c-3", "c-4", "c-5", "c-7"}) {
    EXPECT_EQ(Call("GET", std::string("/v1/sales/") + id).status, 404) << id;
  }
}

TEST(RateLimiterTest, BucketRefillsAtTheRate) {
  RateLimiter limiter(2.0, 3.0);
  const int64_t t0 = 1'000'000;
  EXPECT_EQ(limiter.Acquire("a", t0), 0);
  EXPECT_EQ(limiter.Acquire("a", t0), 0);
  EXPECT_EQ(limiter.Acquire("a", t0), 0);
  EXPECT_EQ(limiter.Acquire("a", t0), 1);  // empty: 0.5 s to the next token, rounded up
  EXPECT_EQ(limiter.Acquire("b", t0), 0);  // independent key
  EXPECT_EQ(limiter.Acquire("a", t0 + 500'000), 0);
  EXPECT_EQ(limiter.Acquire("a", t0 + 500'000), 1);
  EXPECT_EQ(limiter.Acquire("a", t0 + 100'000'000), 0);  // refills up to the burst only
  EXPECT_EQ(limiter.Acquire("a", t0 + 100'000'000), 0);
  EXPECT_EQ(limiter.Acquire("a", t0 + 100'000'000), 0);
  EXPECT_EQ(limiter.Acquire("a", t0 + 100'000'000), 1);

  RateLimiter slow(0.1, 1.0);
  EXPECT_EQ(slow.Acquire("x", 0), 0);
  EXPECT_EQ(slow.Acquire("x", 0), 10);

  RateLimiter unlimited(0, 0);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(unlimited.Acquire("x", 0), 0);
}

// ---- Store events, drawers and reports (issue #8) ----

// A store event body; `extra` members are added (or replace the defaults).
std::string EventBody(std::string_view id, std::string_view type, std::string_view terminal,
                      json extra = json::object()) {
  json body = {{"id", id},
               {"terminal_id", terminal},
               {"type", type},
               {"created_at", "2026-11-27T08:00:00Z"},
               {"currency", "USD"}};
  if (type == "drawer_open") body["amount"] = "100.00";
  if (type == "cash_in" || type == "cash_out") {
    body["amount"] = "5.00";
    body["reason"] = "change for the till";
  }
  if (type == "drawer_close") body["counted"] = "100.00";
  for (const auto& [key, value] : extra.items()) body[key] = value;
  return body.dump();
}

std::string ZBody(std::string_view id, json extra = json::object()) {
  json body = {{"id", id}, {"created_at", "2026-11-27T22:00:00Z"}};
  for (const auto& [key, value] : extra.items()) body[key] = value;
  return body.dump();
}

// A card-paid sale (no cash moves).
std::string CardSaleBody(std::string_view id, std::string_view terminal) {
  json body = json::parse(SaleBody(id, terminal));
  body["payments"] = {{{"method", "card"},
                       {"amount", "7.58"},
                       {"card_token", "tok_1"},
                       {"last4", "4242"},
                       {"offline", true}}};
  return body.dump();
}

TEST_F(ApiTest, DrawerSessionOverHttpOpenCashMovesAndClose) {
  // T02 holds a terminal token: it posts its own drawer's events and reads its session.
  Response open = Call("POST", "/v1/events", EventBody("d-open", "drawer_open", "T02"), kTokenTwo);
  ASSERT_EQ(open.status, 201) << open.body;
  EXPECT_EQ(open.content_type, "application/json");
  json stored = json::parse(open.body);
  EXPECT_EQ(stored["id"], "d-open");
  EXPECT_EQ(stored["seq"], 1);
  EXPECT_EQ(stored["type"], "drawer_open");
  EXPECT_EQ(stored["terminal_id"], "T02");
  EXPECT_EQ(stored["amount"], "100.00");
  EXPECT_EQ(stored["hash"].get<std::string>().size(), 64u);
  EXPECT_EQ(stored["received_at"], core::FormatRfc3339(clock_.NowMs()));
  // The answer is the stored entry, as GET /v1/sales/{id} shows it.
  EXPECT_EQ(Call("GET", "/v1/sales/d-open", {}, kTokenTwo).body, open.body);

  clock_.Advance(5'000);
  // A retry (other key order, "100" for "100.00") is a replay: 200, the same entry.
  json retry = json::parse(EventBody("d-open", "drawer_open", "T02"));
  retry["amount"] = "100";
  Response replay = Call("POST", "/v1/events", retry.dump(2), kTokenTwo);
  EXPECT_EQ(replay.status, 200);
  EXPECT_EQ(replay.body, open.body);

  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("d-sale", "T02"), kTokenTwo).status, 201);  // +7.58
  ASSERT_EQ(Call("POST", "/v1/sales", CardSaleBody("d-card", "T02"), kTokenTwo).status, 201);
  Response out = Call("POST", "/v1/events",
                      EventBody("d-out", "cash_out", "T02", {{"amount", "12.40"}}), kTokenTwo);
  ASSERT_EQ(out.status, 201) << out.body;
  EXPECT_EQ(json::parse(out.body)["reason"], "change for the till");
  ASSERT_EQ(Call("POST", "/v1/events", EventBody("d-in", "cash_in", "T02"), kTokenTwo).status, 201);

  Response drawers = Call("GET", "/v1/drawers", {}, kTokenTwo);
  ASSERT_EQ(drawers.status, 200) << drawers.body;
  json view = json::parse(drawers.body);
  EXPECT_EQ(view["currency"], "USD");
  ASSERT_EQ(view["open"].size(), 1u) << drawers.body;
  const json& session = view["open"][0];
  EXPECT_EQ(session["terminal_id"], "T02");
  EXPECT_EQ(session["opened_seq"], 1);
  EXPECT_EQ(session["float"], "100.00");
  EXPECT_EQ(session["cash_sales"], "7.58");  // 8.00 tendered, 0.42 change
  EXPECT_EQ(session["cash_out"], "12.40");
  EXPECT_EQ(session["cash_in"], "5.00");
  EXPECT_EQ(session["expected"], "100.18");  // 100 + 7.58 - 12.40 + 5
  EXPECT_FALSE(session.contains("counted"));
  EXPECT_EQ(view["closed"].size(), 0u);

  Response close = Call(
      "POST", "/v1/events",
      EventBody("d-close", "drawer_close", "T02",
                {{"counted", "100.00"}, {"counts", {{{"denomination", "50.00"}, {"count", 2}}}}}),
      kTokenTwo);
  ASSERT_EQ(close.status, 201) << close.body;
  EXPECT_EQ(json::parse(close.body)["counted"], "100.00");
  view = json::parse(Call("GET", "/v1/drawers", {}, kTokenTwo).body);
  EXPECT_EQ(view["open"].size(), 0u);
  ASSERT_EQ(view["closed"].size(), 1u);
  EXPECT_EQ(view["closed"][0]["expected"], "100.18");
  EXPECT_EQ(view["closed"][0]["counted"], "100.00");
  EXPECT_EQ(view["closed"][0]["variance"], "-0.18");
  EXPECT_EQ(view["closed"][0]["closed_seq"], 6);
  // Events are journal entries: listed with the sales, in one sequence.
  json list = json::parse(Call("GET", "/v1/sales?after_seq=0").body);
  ASSERT_EQ(list["sales"].size(), 6u);
  EXPECT_EQ(list["sales"][4]["type"], "cash_in");
  EXPECT_NE(metrics_.RenderText().find(
                "machub_http_requests_total{route=\"/v1/events\",status=\"201\"} 4"),
            std::string::npos);
}

TEST_F(ApiTest, DrawerRulesAndIdempotencyOfEvents) {
  ASSERT_EQ(Call("POST", "/v1/events", EventBody("r-open", "drawer_open", "T02"), kTokenTwo).status,
            201);
  Response twice =
      Call("POST", "/v1/events", EventBody("r-open2", "drawer_open", "T02"), kTokenTwo);
  EXPECT_EQ(twice.status, 409);
  EXPECT_EQ(CodeOf(twice), "drawer_already_open");
  // The same id with another float is a conflict, not a second drawer.
  Response conflict =
      Call("POST", "/v1/events", EventBody("r-open", "drawer_open", "T02", {{"amount", "90.00"}}),
           kTokenTwo);
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(CodeOf(conflict), "id_conflict");
  // Ids of sales and events are one space.
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("r-sale", "T02"), kTokenTwo).status, 201);
  Response reused = Call("POST", "/v1/events", EventBody("r-sale", "cash_in", "T02"), kTokenTwo);
  EXPECT_EQ(reused.status, 409);
  EXPECT_EQ(CodeOf(reused), "id_conflict");
  // T01's drawer was never opened: no cash in, out or close there.
  for (const char* type : {"cash_in", "cash_out", "drawer_close"}) {
    Response r = Call("POST", "/v1/events", EventBody(std::string("r-") + type, type, "T01"));
    EXPECT_EQ(r.status, 409) << type;
    EXPECT_EQ(CodeOf(r), "drawer_closed") << type;
    EXPECT_EQ(Call("GET", std::string("/v1/sales/r-") + type).status, 404) << type;
  }
  ASSERT_EQ(
      Call("POST", "/v1/events", EventBody("r-close", "drawer_close", "T02"), kTokenTwo).status,
      201);
  Response after_close =
      Call("POST", "/v1/events", EventBody("r-out", "cash_out", "T02"), kTokenTwo);
  EXPECT_EQ(after_close.status, 409);
  EXPECT_EQ(CodeOf(after_close), "drawer_closed");
  // A new session may start once the last one is closed.
  EXPECT_EQ(
      Call("POST", "/v1/events", EventBody("r-open3", "drawer_open", "T02"), kTokenTwo).status,
      201);
  EXPECT_EQ(journal_.size(), 4u);  // open, sale, close, open
}

// drawer.close_time: a drawer opened before the last close and still open raises
// drawer_open_past_close; closing it clears the alert. Local time is UTC here (TZ).
TEST_F(ApiTest, DrawerLeftOpenPastTheCloseRaisesAnAlertThatClearsOnClose) {
  const char* old_tz = getenv("TZ");
  const std::string saved_tz = old_tz != nullptr ? old_tz : "";
  setenv("TZ", "UTC", 1);
  tzset();
  auto BodyOf = [](const Response& r) { return json::parse(r.body); };
  ApiOptions options = DefaultOptions();
  options.drawer_close_minute = 11 * 60;  // the clock reads 10:15 UTC
  Build(options);
  ASSERT_EQ(Call("POST", "/v1/events", EventBody("p-open", "drawer_open", "T02"), kTokenTwo).status,
            201);
  ASSERT_EQ(Call("POST", "/v1/events", EventBody("p-open1", "drawer_open", "T01")).status, 201);
  ASSERT_EQ(Call("POST", "/v1/events", EventBody("p-close1", "drawer_close", "T01")).status, 201);
  // Opened after yesterday's 11:00: fine until 11:00 today.
  EXPECT_EQ(BodyOf(Call("GET", "/v1/alerts"))["alerts"].size(), 0u);
  clock_.Advance(44 * 60'000);  // 10:59
  EXPECT_EQ(BodyOf(Call("GET", "/v1/alerts"))["alerts"].size(), 0u);
  clock_.Advance(2 * 60'000);  // 11:01
  json alerts = BodyOf(Call("GET", "/v1/alerts"))["alerts"];
  ASSERT_EQ(alerts.size(), 1u) << alerts.dump();
  EXPECT_EQ(alerts[0]["code"], "drawer_open_past_close");
  EXPECT_EQ(alerts[0]["severity"], "warning");
  EXPECT_EQ(alerts[0]["close_time"], "11:00");
  EXPECT_EQ(alerts[0]["last_close_at"], "2026-11-27T11:00:00.000Z");
  ASSERT_EQ(alerts[0]["drawers"].size(), 1u);  // T01's drawer was closed
  EXPECT_EQ(alerts[0]["drawers"][0]["terminal_id"], "T02");
  EXPECT_EQ(alerts[0]["drawers"][0]["opened_at"], "2026-11-27T10:15:00.000Z");
  EXPECT_NE(BodyOf(Call("GET", "/v1/status"))["alerts"].dump().find("drawer_open_past_close"),
            std::string::npos);
  // A drawer opened after the close does not join it; closing T02's clears the alert.
  ASSERT_EQ(Call("POST", "/v1/events", EventBody("p-open2", "drawer_open", "T01")).status, 201);
  EXPECT_EQ(BodyOf(Call("GET", "/v1/alerts"))["alerts"][0]["drawers"].size(), 1u);
  ASSERT_EQ(
      Call("POST", "/v1/events", EventBody("p-close", "drawer_close", "T02"), kTokenTwo).status,
      201);
  EXPECT_EQ(BodyOf(Call("GET", "/v1/alerts"))["alerts"].size(), 0u);
  // Without a close time no such alert, however old the drawer.
  clock_.Advance(3 * 86'400'000);
  Build(DefaultOptions());
  EXPECT_EQ(BodyOf(Call("GET", "/v1/alerts"))["alerts"].size(), 0u);
  if (old_tz != nullptr) {
    setenv("TZ", saved_tz.c_str(), 1);
  } else {
    unsetenv("TZ");
  }
  tzset();
}

TEST_F(ApiTest, CashSaleOnAClosedDrawerIsRefusedWhenRequired) {
  journal_.SetCashRequiresOpenDrawer(true);
  Response cash = Call("POST", "/v1/sales", SaleBody("c-cash", "T02"), kTokenTwo);
  EXPECT_EQ(cash.status, 409);
  EXPECT_EQ(CodeOf(cash), "drawer_closed");
  EXPECT_EQ(Call("POST", "/v1/sales", CardSaleBody("c-card", "T02"), kTokenTwo).status, 201);
  ASSERT_EQ(Call("POST", "/v1/events", EventBody("c-open", "drawer_open", "T02"), kTokenTwo).status,
            201);
  EXPECT_EQ(Call("POST", "/v1/sales", SaleBody("c-cash", "T02"), kTokenTwo).status, 201);
}

TEST_F(ApiTest, EventOfAnotherTerminalIs403AndBadBodiesStoreNothing) {
  Response other = Call("POST", "/v1/events", EventBody("e-1", "drawer_open", "T01"), kTokenTwo);
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(CodeOf(other), "forbidden");
  EXPECT_EQ(FieldOf(other), "terminal_id");
  // A manager token is bound to its terminal too.
  EXPECT_EQ(Call("POST", "/v1/events", EventBody("e-2", "drawer_open", "T02")).status, 403);

  struct Case {
    std::string body;
    int status;
    std::string code;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"{\"id\":", 400, "invalid_json", "<no field>"},
      {"[]", 400, "invalid_json", "<no field>"},
      {EventBody("e-3", "drawer_open", "T02", {{"id", "x"}}) + "x", 400, "invalid_json",
       "<no field>"},
      {EventBody("e-4", "drawer_open", "T02", {{"amount", nullptr}}), 422, "missing_field",
       "amount"},
      {EventBody("e-5", "drawer_open", "T02", {{"amount", 100}}), 422, "invalid_field", "amount"},
      {EventBody("e-6", "drawer_open", "T02", {{"amount", "1.005"}}), 422, "invalid_field",
       "amount"},
      {EventBody("e-7", "cash_out", "T02", {{"amount", "0.00"}}), 422, "invalid_field", "amount"},
      {EventBody("e-8", "cash_out", "T02", {{"reason", nullptr}}), 422, "missing_field", "reason"},
      {EventBody("e-9", "z_report", "T02"), 422, "invalid_field", "type"},
      {EventBody("e-10", "sale", "T02"), 422, "invalid_field", "type"},
      {EventBody("e-11", "drawer_open", "T02", {{"counted", "1.00"}}), 422, "invalid_field",
       "counted"},
      {EventBody("e-12", "drawer_open", "T02", {{"currency", "XXY"}}), 422, "invalid_field",
       "currency"},
      {EventBody("e-13", "cash_in", "T02", {{"reason", "card 4111 1111 1111 1111"}}), 422,
       "card_number_forbidden", "reason"},
      {EventBody("e-14", "drawer_close", "T02",
                 {{"counts", {{{"denomination", "20.00"}, {"count", 4}}}}}),
       422, "total_mismatch", "counts"},
      {EventBody("../x", "drawer_open", "T02"), 422, "invalid_field", "id"},
  };
  for (const Case& c : cases) {
    Response r = Call("POST", "/v1/events", c.body, kTokenTwo);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    EXPECT_EQ(CodeOf(r), c.code) << c.body;
    EXPECT_EQ(FieldOf(r), c.field) << c.body;
    EXPECT_EQ(r.body.find("4111"), std::string::npos) << r.body;
  }
  EXPECT_EQ(journal_.appends(), 0);  // nothing reached the journal

  journal_.SetFailure(Status(ErrorCode::kStorageUnavailable, "disk full"));
  Response down = Call("POST", "/v1/events", EventBody("e-15", "drawer_open", "T02"), kTokenTwo);
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(CodeOf(down), "storage_unavailable");
  for (const char* target : {"/v1/reports/x", "/v1/drawers", "/v1/reports/z/last"}) {
    EXPECT_EQ(Call("GET", target).status, 503) << target;
  }
  EXPECT_EQ(Call("POST", "/v1/reports/z", ZBody("z-down")).status, 503);
}

TEST_F(ApiTest, ATokenPutIntoTheBodyIsNotEchoedInTheError) {
  // Unknown members are named in the error's field; the caller's own token is not.
  json sale = json::parse(SaleBody("t-1"));
  sale[kTokenOne] = 1;
  json event = json::parse(EventBody("t-2", "drawer_open", "T01"));
  event[kTokenOne] = 1;
  json z = json::parse(ZBody("t-3"));
  z[kTokenOne] = 1;
  for (const auto& [target, body] : std::vector<std::pair<std::string, json>>{
           {"/v1/sales", sale}, {"/v1/events", event}, {"/v1/reports/z", z}}) {
    Response r = Call("POST", target, body.dump());
    EXPECT_EQ(r.status, 422) << target;
    EXPECT_EQ(CodeOf(r), "invalid_field") << target;
    EXPECT_EQ(r.body.find(kTokenOne), std::string::npos) << r.body;
  }
  // Another unknown member is still named.
  event.erase(kTokenOne);
  event["colour"] = "red";
  EXPECT_EQ(FieldOf(Call("POST", "/v1/events", event.dump())), "colour");
  EXPECT_EQ(journal_.appends(), 0);
}

TEST_F(ApiTest, ReportsNeedAManagerTokenAndRoutesTheirMethods) {
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("m-1", "T02"), kTokenTwo).status, 201);
  const std::vector<std::pair<std::string, std::string>> manager_only = {
      {"GET", "/v1/reports/x"},
      {"GET", "/v1/reports/x?currency=USD"},
      {"POST", "/v1/reports/z"},
      {"GET", "/v1/reports/z/last"}};
  for (const auto& [method, target] : manager_only) {
    // The role is checked before the body: a valid Z body from a terminal token is refused.
    Response r = Call(method, target, method == "POST" ? ZBody("z-t") : "", kTokenTwo);
    EXPECT_EQ(r.status, 403) << target;
    EXPECT_EQ(CodeOf(r), "forbidden") << target;
    EXPECT_NE(r.body.find("manager token"), std::string::npos) << r.body;
  }
  EXPECT_EQ(journal_.appends(), 1);  // only the sale
  EXPECT_EQ(Call("GET", "/v1/sales/z-t").status, 404);
  // Drawers: any token (a terminal sees its own).
  EXPECT_EQ(Call("GET", "/v1/drawers", {}, kTokenTwo).status, 200);
  EXPECT_EQ(Call("GET", "/v1/drawers").status, 200);
  // No token at all: 401, decided on the header alone (auth before body).
  for (const char* target : {"/v1/events", "/v1/reports/z"}) {
    Request header;
    header.method = "POST";
    header.target = target;
    header.remote_address = "192.0.2.9";
    std::optional<Response> refused = api_->CheckHeader(header);
    ASSERT_TRUE(refused.has_value()) << target;
    EXPECT_EQ(refused->status, 401);
    header.headers.emplace_back("authorization", std::string("Bearer ") + kTokenTwo);
    EXPECT_FALSE(api_->CheckHeader(header).has_value()) << target;  // the role comes later
  }
  // Methods: each new path names what it allows.
  const std::vector<std::tuple<std::string, std::string, std::string>> wrong = {
      {"GET", "/v1/events", "POST"},    {"PUT", "/v1/events", "POST"},
      {"GET", "/v1/reports/z", "POST"}, {"POST", "/v1/reports/x", "GET"},
      {"DELETE", "/v1/drawers", "GET"}, {"POST", "/v1/reports/z/last", "GET"}};
  for (const auto& [method, target, allow] : wrong) {
    Response r = Call(method, target, "{}");
    EXPECT_EQ(r.status, 405) << method << " " << target;
    EXPECT_EQ(HeaderOf(r, "Allow"), allow) << target;
  }
  EXPECT_EQ(Call("GET", "/v1/reports").status, 404);
  EXPECT_EQ(Call("GET", "/v1/reports/z/1").status, 404);
  EXPECT_EQ(journal_.appends(), 1);
}

TEST_F(ApiTest, XReportShowsTheOpenDaysFiguresAndDrawers) {
  Response empty = Call("GET", "/v1/reports/x");
  ASSERT_EQ(empty.status, 200) << empty.body;
  json x = json::parse(empty.body);
  EXPECT_EQ(x["report"], "x");
  EXPECT_EQ(x["store_id"], "S042");
  EXPECT_EQ(x["currency"], "USD");  // nothing yet, no Z yet: USD
  EXPECT_TRUE(x["last_z"].is_null());
  EXPECT_EQ(x["figures"]["entries"], 0);
  EXPECT_EQ(x["open_drawers"].size(), 0u);

  ASSERT_EQ(Call("POST", "/v1/events", EventBody("x-open", "drawer_open", "T02"), kTokenTwo).status,
            201);
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("x-1", "T02"), kTokenTwo).status, 201);
  ASSERT_EQ(Call("POST", "/v1/sales", CardSaleBody("x-2", "T02"), kTokenTwo).status, 201);
  json bigger = json::parse(SaleBody("x-3", "T01", "4"));  // 15.16 in cash on T01
  bigger["payments"][0]["amount"] = "15.16";
  ASSERT_EQ(Call("POST", "/v1/sales", bigger.dump()).status, 201);
  // T01 refunds one coffee of T02's card sale (any terminal may refund any sale).
  json refund = json::parse(SaleBody("x-r", "T01", "1"));
  refund["type"] = "refund";
  refund["ref"] = "x-2";
  refund["payments"] = {{{"method", "card"}, {"amount", "3.79"}, {"card_token", "tok_1"}}};
  Response refunded = Call("POST", "/v1/sales", refund.dump());
  ASSERT_EQ(refunded.status, 201) << refunded.body;

  Response r = Call("GET", "/v1/reports/x");
  ASSERT_EQ(r.status, 200) << r.body;
  x = json::parse(r.body);
  const json& f = x["figures"];
  EXPECT_EQ(f["currency"], "USD");
  EXPECT_EQ(f["entries"], 5);
  EXPECT_EQ(f["first_seq"], 1);
  EXPECT_EQ(f["last_seq"], 5);
  EXPECT_EQ(f["sales"]["count"], 3);
  EXPECT_EQ(f["sales"]["subtotal"], "28.00");
  EXPECT_EQ(f["sales"]["tax"], "2.32");
  EXPECT_EQ(f["sales"]["total"], "30.32");
  EXPECT_EQ(f["refunds"]["count"], 1);
  EXPECT_EQ(f["refunds"]["total"], "3.79");
  EXPECT_EQ(f["net"]["total"], "26.53");
  ASSERT_EQ(f["by_method"].size(), 2u);
  EXPECT_EQ(f["by_method"][0]["method"], "card");
  EXPECT_EQ(f["by_method"][0]["net"], "3.79");
  EXPECT_EQ(f["by_method"][1]["method"], "cash");
  EXPECT_EQ(f["by_method"][1]["collected"], "22.74");  // 7.58 + 15.16
  EXPECT_EQ(f["offline_card"]["count"], 1);
  ASSERT_EQ(f["terminals"].size(), 2u);
  EXPECT_EQ(f["terminals"][0]["terminal_id"], "T01");
  EXPECT_EQ(f["terminals"][0]["sales"], 1);
  EXPECT_EQ(f["terminals"][0]["refunds"], 1);
  EXPECT_EQ(f["terminals"][1]["first_receipt"], "T02-100002");
  // T01 has no drawer: its cash is counted apart.
  ASSERT_EQ(f["cash_without_drawer"].size(), 1u);
  EXPECT_EQ(f["cash_without_drawer"][0]["amount"], "15.16");
  ASSERT_EQ(x["open_drawers"].size(), 1u);
  EXPECT_EQ(x["open_drawers"][0]["terminal_id"], "T02");
  EXPECT_EQ(x["open_drawers"][0]["expected"], "107.58");
  // The figures are exactly core::ComputeReport's over the open day (the Z's computation).
  auto day = journal_.ReadOpenDay();
  ASSERT_TRUE(day.ok());
  auto computed = core::ComputeReport(day->entries, "USD");
  ASSERT_TRUE(computed.ok());
  EXPECT_EQ(f.dump(), json::parse(core::ReportFiguresJson(*computed)).dump());

  // Another currency: nothing of the day is in it.
  json eur = json::parse(Call("GET", "/v1/reports/x?currency=EUR").body);
  EXPECT_EQ(eur["currency"], "EUR");
  EXPECT_EQ(eur["figures"]["sales"]["count"], 0);
  EXPECT_EQ(eur["figures"]["other_currency_entries"], 5);
  for (const char* target :
       {"/v1/reports/x?currency=usd", "/v1/reports/x?currency=XXY",
        "/v1/reports/x?currency=", "/v1/reports/x?currency=%zz", "/v1/drawers?currency=dollars"}) {
    Response bad = Call("GET", target);
    EXPECT_EQ(bad.status, 422) << target;
    EXPECT_EQ(CodeOf(bad), "invalid_field") << target;
    EXPECT_EQ(FieldOf(bad), "currency") << target;
  }
}

TEST_F(ApiTest, ZReportClosesTheDayOnceAndTheXReportStartsAgain) {
  Response none = Call("GET", "/v1/reports/z/last");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(CodeOf(none), "not_found");

  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("z-s1", "T02"), kTokenTwo).status, 201);
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("z-s2", "T01")).status, 201);
  Response z1 = Call("POST", "/v1/reports/z", ZBody("z-1", {{"cashier", "mgr-1"}}));
  ASSERT_EQ(z1.status, 201) << z1.body;
  json z = json::parse(z1.body);
  EXPECT_EQ(z["id"], "z-1");
  EXPECT_EQ(z["type"], "z_report");
  EXPECT_EQ(z["seq"], 3);
  EXPECT_EQ(z["receipt_no"], "Z1");
  EXPECT_EQ(z["z_number"], 1);
  EXPECT_EQ(z["first_seq"], 1);
  EXPECT_EQ(z["last_seq"], 2);
  EXPECT_EQ(z["currency"], "USD");
  EXPECT_EQ(z["cashier"], "mgr-1");
  EXPECT_FALSE(z.contains("terminal_id"));  // not sent: a manager without a till
  EXPECT_EQ(z["figures"]["sales"]["count"], 2);
  EXPECT_EQ(z["figures"]["net"]["total"], "15.16");

  // A retry of the same request: 200 and the same stored report, not a Z2.
  clock_.Advance(30'000);
  Response again = Call("POST", "/v1/reports/z", ZBody("z-1", {{"cashier", "mgr-1"}}));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, z1.body);
  Response other = Call("POST", "/v1/reports/z", ZBody("z-1", {{"cashier", "mgr-2"}}));
  EXPECT_EQ(other.status, 409);
  EXPECT_EQ(CodeOf(other), "id_conflict");
  Response sale_id = Call("POST", "/v1/reports/z", ZBody("z-s1"));
  EXPECT_EQ(sale_id.status, 409);
  EXPECT_EQ(CodeOf(sale_id), "id_conflict");

  Response last = Call("GET", "/v1/reports/z/last");
  ASSERT_EQ(last.status, 200);
  EXPECT_EQ(last.body, z1.body);

  // The X report now covers only what follows Z1.
  json x = json::parse(Call("GET", "/v1/reports/x").body);
  EXPECT_EQ(x["last_z"]["z_number"], 1);
  EXPECT_EQ(x["last_z"]["seq"], 3);
  EXPECT_EQ(x["currency"], "USD");  // from the last Z
  EXPECT_EQ(x["figures"]["entries"], 0);
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("z-s3", "T02"), kTokenTwo).status, 201);
  x = json::parse(Call("GET", "/v1/reports/x").body);
  EXPECT_EQ(x["figures"]["sales"]["count"], 1);
  EXPECT_EQ(x["figures"]["first_seq"], 4);

  // Z2 covers seq 4 (the sale) only; a Z in another currency may be asked for.
  Response z2 = Call("POST", "/v1/reports/z", ZBody("z-2", {{"terminal_id", "T01"}}));
  ASSERT_EQ(z2.status, 201) << z2.body;
  z = json::parse(z2.body);
  EXPECT_EQ(z["receipt_no"], "Z2");
  EXPECT_EQ(z["terminal_id"], "T01");
  EXPECT_EQ(z["first_seq"], 4);
  EXPECT_EQ(z["last_seq"], 4);
  EXPECT_EQ(Call("GET", "/v1/reports/z/last").body, z2.body);
  Response z3 = Call("POST", "/v1/reports/z", ZBody("z-3", {{"currency", "EUR"}}));
  ASSERT_EQ(z3.status, 201);
  EXPECT_EQ(json::parse(z3.body)["figures"]["currency"], "EUR");
  EXPECT_EQ(json::parse(z3.body)["figures"]["entries"], 0);
}

// A journal whose ReadOpenDay waits until released: holds the report thread busy.
class SlowDayJournal final : public machub::testing::MemoryJournal {
 public:
  using MemoryJournal::MemoryJournal;
  Result<OpenDay> ReadOpenDay() override {
    if (!entered_once_.exchange(true)) entered_.set_value();
    release_.wait();
    return MemoryJournal::ReadOpenDay();
  }
  std::atomic<bool> entered_once_{false};
  std::promise<void> entered_;
  std::shared_future<void> release_;
};

TEST_F(ApiTest, ReportsRunOffTheCallingThreadAndABusyQueueIs503) {
  SlowDayJournal slow(&clock_);
  std::promise<void> release;
  slow.release_ = release.get_future().share();
  ApiOptions options = DefaultOptions();
  options.report_queue_max = 1;
  ApiHandler api(options, &slow, nullptr, &clock_);
  auto call = [&api](std::string target, std::string_view token) {
    Request request;
    request.method = "GET";
    request.target = std::move(target);
    request.headers.emplace_back("authorization", "Bearer " + std::string(token));
    auto promise = std::make_shared<std::promise<Response>>();
    auto future = promise->get_future();
    api.Handle(std::move(request), [promise](Response r) { promise->set_value(std::move(r)); });
    return future;
  };
  auto first = call("/v1/reports/x", kTokenOne);  // taken by the report thread, blocked
  slow.entered_.get_future().wait();
  // Handle returned without an answer: the I/O thread is free while the day is read.
  EXPECT_EQ(first.wait_for(0ms), std::future_status::timeout);
  auto second = call("/v1/drawers", kTokenTwo);                  // waits in the queue (1 place)
  Response third = call("/v1/reports/z/last", kTokenOne).get();  // queue full
  EXPECT_EQ(third.status, 503);
  EXPECT_EQ(CodeOf(third), "server_busy");
  EXPECT_EQ(HeaderOf(third, "Retry-After"), "1");
  // Other routes are not queued behind reports.
  EXPECT_EQ(call("/v1/sales/none", kTokenTwo).get().status, 404);
  release.set_value();
  EXPECT_EQ(first.get().status, 200);
  EXPECT_EQ(second.get().status, 200);
}

TEST_F(ApiTest, ZRequestValidationAndTerminalBinding) {
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("v-1", "T01")).status, 201);
  const std::vector<std::tuple<std::string, int, std::string, std::string>> cases = {
      {"not json", 400, "invalid_json", "<no field>"},
      {R"({"id":"z-a","id":"z-b","created_at":"2026-11-27T22:00:00Z"})", 400, "invalid_json",
       "<no field>"},
      {R"({"created_at":"2026-11-27T22:00:00Z"})", 422, "missing_field", "id"},
      {R"({"id":"z-c"})", 422, "missing_field", "created_at"},
      {ZBody("z-d", {{"created_at", "yesterday"}}), 422, "invalid_field", "created_at"},
      {ZBody("z-e", {{"currency", "usd"}}), 422, "invalid_field", "currency"},
      {ZBody("z-f", {{"figures", json::object()}}), 422, "invalid_field", "figures"},
      {ZBody("z-g", {{"z_number", 7}}), 422, "invalid_field", "z_number"},
      {ZBody("z-h", {{"type", "z_report"}}), 422, "invalid_field", "type"},
      {ZBody("z-i", {{"cashier", "4111111111111111"}}), 422, "card_number_forbidden", "cashier"},
  };
  for (const auto& [body, status, code, field] : cases) {
    Response r = Call("POST", "/v1/reports/z", body);
    EXPECT_EQ(r.status, status) << body << " -> " << r.body;
    EXPECT_EQ(CodeOf(r), code) << body;
    EXPECT_EQ(FieldOf(r), field) << body;
    EXPECT_EQ(r.body.find("4111111111111111"), std::string::npos);
  }
  // terminal_id, when sent, must be the token's.
  Response other = Call("POST", "/v1/reports/z", ZBody("z-j", {{"terminal_id", "T02"}}));
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(FieldOf(other), "terminal_id");
  EXPECT_EQ(journal_.appends(), 1);
  EXPECT_EQ(Call("GET", "/v1/reports/z/last").status, 404);
}

TEST_F(ApiTest, DrawersShowEachTokenItsOwnAndSessionsLeftOpenOverAZ) {
  ASSERT_EQ(Call("POST", "/v1/events",
                 EventBody("o-1", "drawer_open", "T02", {{"amount", "50.00"}}), kTokenTwo)
                .status,
            201);
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("o-s1", "T02"), kTokenTwo).status, 201);
  ASSERT_EQ(Call("POST", "/v1/events", EventBody("o-2", "drawer_open", "T01")).status, 201);
  // The day is closed while both drawers are still open.
  ASSERT_EQ(Call("POST", "/v1/reports/z", ZBody("o-z")).status, 201);
  ASSERT_EQ(Call("POST", "/v1/sales", SaleBody("o-s2", "T02"), kTokenTwo).status, 201);

  json mine = json::parse(Call("GET", "/v1/drawers", {}, kTokenTwo).body);
  ASSERT_EQ(mine["open"].size(), 1u) << mine.dump();
  EXPECT_EQ(mine["open"][0]["terminal_id"], "T02");
  EXPECT_EQ(mine["open"][0]["opened_seq"], 1);
  // Read back from before the Z: float 50 + two cash sales of 7.58.
  EXPECT_EQ(mine["open"][0]["cash_sales"], "15.16");
  EXPECT_EQ(mine["open"][0]["expected"], "65.16");

  json all = json::parse(Call("GET", "/v1/drawers").body);
  ASSERT_EQ(all["open"].size(), 2u) << all.dump();
  EXPECT_EQ(all["open"][0]["terminal_id"], "T02");
  EXPECT_EQ(all["open"][1]["terminal_id"], "T01");
  EXPECT_EQ(all["open"][1]["expected"], "100.00");
  json x = json::parse(Call("GET", "/v1/reports/x").body);
  EXPECT_EQ(x["open_drawers"], all["open"]);
  // In the open day itself, T02's sale after the Z has no session: it is cash without one.
  EXPECT_EQ(x["figures"]["cash_without_drawer"][0]["amount"], "7.58");

  ASSERT_EQ(Call("POST", "/v1/events",
                 EventBody("o-3", "drawer_close", "T02", {{"counted", "65.16"}}), kTokenTwo)
                .status,
            201);
  mine = json::parse(Call("GET", "/v1/drawers", {}, kTokenTwo).body);
  EXPECT_EQ(mine["open"].size(), 0u);
  all = json::parse(Call("GET", "/v1/drawers").body);
  ASSERT_EQ(all["open"].size(), 1u);
  EXPECT_EQ(all["open"][0]["terminal_id"], "T01");
}

// ---- Through the real server, and with the real journal ----

std::unique_ptr<Server> StartApiServer(ApiHandler* api, size_t body_limit = 256 * 1024) {
  ServerOptions options;
  options.port = 0;
  options.body_limit = body_limit;
  auto server = Server::Start(options, [api](Request&& request, Respond respond) {
    api->Handle(std::move(request), std::move(respond));
  });
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(server).value() : nullptr;
}

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
    char tmpl[] = "/tmp/machub-http-journal-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
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
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

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
