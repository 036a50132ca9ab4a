// API tests (api_test_support.h has the fixture): Sales over the API: create, replay, conflicts,
// validation, auth and roles, rate limits, reads, status, metrics, the dashboard.
#include "http/api.h"

#include "http/api_test_support.h"

namespace machub::http {
namespace {

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

}  // namespace
}  // namespace machub::http
