// API tests (api_test_support.h has the fixture): Store events, drawers and X/Z reports over the
// API.
#include "http/api_test_support.h"

namespace machub::http {
namespace {

// ---- Store events, drawers and reports (issue #8) ----

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

}  // namespace
}  // namespace machub::http
