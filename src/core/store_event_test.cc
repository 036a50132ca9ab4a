#include "core/store_event.h"

#include <gtest/gtest.h>

#include <string>

#include "core/chain.h"

namespace machub::core {
namespace {

constexpr char kOpen[] = R"({"id":"open-1","terminal_id":"T01","type":"drawer_open",)"
                         R"("created_at":"2026-12-05T08:00:00Z","currency":"USD","amount":"150"})";

TEST(StoreEventTest, DrawerOpenDecodesAndEncodesCanonically) {
  Result<StoreEvent> event = DecodeEventRequest(kOpen);
  ASSERT_TRUE(event.ok()) << event.status().ToString();
  EXPECT_EQ(event->type, EventType::kDrawerOpen);
  EXPECT_EQ(event->amount, 15000);
  EXPECT_EQ(CanonicalEvent(*event),
            R"({"id":"open-1","terminal_id":"T01","type":"drawer_open",)"
            R"("created_at":"2026-12-05T08:00:00.000Z","currency":"USD","amount":"150.00"})");
}

TEST(StoreEventTest, SameMeaningGivesSameBytes) {
  Result<StoreEvent> a = DecodeEventRequest(kOpen);
  Result<StoreEvent> b = DecodeEventRequest(
      R"({ "amount" : "150.00", "currency":"USD","type":"drawer_open","terminal_id":"T01",)"
      R"("created_at":"2026-12-05T09:00:00+01:00","id":"open-1","cashier":null})");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(CanonicalEvent(*a), CanonicalEvent(*b));
}

TEST(StoreEventTest, CashOutNeedsPositiveAmountAndReason) {
  const std::string base =
      R"({"id":"po-1","terminal_id":"T02","type":"cash_out","created_at":"2026-12-05T10:00:00Z",)"
      R"("currency":"USD")";
  Result<StoreEvent> ok =
      DecodeEventRequest(base + R"(,"amount":"12.40","reason":"window cleaner"})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->amount, 1240);
  EXPECT_EQ(ok->reason, "window cleaner");
  EXPECT_EQ(CanonicalEvent(*ok),
            R"({"id":"po-1","terminal_id":"T02","type":"cash_out",)"
            R"("created_at":"2026-12-05T10:00:00.000Z","currency":"USD","amount":"12.40",)"
            R"("reason":"window cleaner"})");

  Result<StoreEvent> no_reason = DecodeEventRequest(base + R"(,"amount":"12.40"})");
  EXPECT_EQ(no_reason.status().code(), ErrorCode::kMissingField);
  EXPECT_EQ(no_reason.status().field(), "reason");

  Result<StoreEvent> zero = DecodeEventRequest(base + R"(,"amount":"0","reason":"x"})");
  EXPECT_EQ(zero.status().code(), ErrorCode::kInvalidField);
  EXPECT_EQ(zero.status().field(), "amount");

  Result<StoreEvent> number = DecodeEventRequest(base + R"(,"amount":12.4,"reason":"x"})");
  EXPECT_EQ(number.status().code(), ErrorCode::kInvalidField);
  EXPECT_EQ(number.status().field(), "amount");

  Result<StoreEvent> places = DecodeEventRequest(base + R"(,"amount":"1.234","reason":"x"})");
  EXPECT_EQ(places.status().code(), ErrorCode::kInvalidField);

  Result<StoreEvent> negative = DecodeEventRequest(base + R"(,"amount":"-1","reason":"x"})");
  EXPECT_EQ(negative.status().code(), ErrorCode::kInvalidField);
}

TEST(StoreEventTest, CardNumberInAnyFreeTextFieldIsRefused) {
  const std::string base =
      R"({"id":"pi-1","terminal_id":"T02","type":"cash_in","created_at":"2026-12-05T10:00:00Z",)"
      R"("currency":"USD","amount":"5.00")";
  Result<StoreEvent> reason =
      DecodeEventRequest(base + R"(,"reason":"customer card 4111 1111 1111 1111"})");
  EXPECT_EQ(reason.status().code(), ErrorCode::kCardNumberForbidden);
  EXPECT_EQ(reason.status().field(), "reason");
  EXPECT_EQ(reason.status().message().find("4111"), std::string::npos);

  Result<StoreEvent> cashier =
      DecodeEventRequest(base + R"(,"reason":"float top-up","cashier":"4111111111111111"})");
  EXPECT_EQ(cashier.status().code(), ErrorCode::kCardNumberForbidden);
  EXPECT_EQ(cashier.status().field(), "cashier");

  Result<StoreEvent> key = DecodeEventRequest(base + R"(,"reason":"x","4111111111111111":1})");
  EXPECT_EQ(key.status().code(), ErrorCode::kInvalidField);
  EXPECT_EQ(key.status().field(), "");  // the card-like key is not echoed
}

TEST(StoreEventTest, IdsAndTerminalIdsAreCheckedLikeASale) {
  const std::string rest =
      R"("type":"cash_in","created_at":"2026-12-05T10:00:00Z","currency":"USD",)"
      R"("amount":"5.00","reason":"float top-up"})";
  Result<StoreEvent> card_id =
      DecodeEventRequest(R"({"id":"4111-1111-1111-1111","terminal_id":"T02",)" + rest);
  EXPECT_EQ(card_id.status().code(), ErrorCode::kCardNumberForbidden);
  EXPECT_EQ(card_id.status().field(), "id");
  EXPECT_EQ(card_id.status().message().find("4111"), std::string::npos);

  Result<StoreEvent> card_terminal =
      DecodeEventRequest(R"({"id":"ev-1","terminal_id":"4111.1111.1111.1111",)" + rest);
  EXPECT_EQ(card_terminal.status().code(), ErrorCode::kCardNumberForbidden);
  EXPECT_EQ(card_terminal.status().field(), "terminal_id");

  for (const char* id : {".", "..", "-x", ":a"}) {
    Result<StoreEvent> bad =
        DecodeEventRequest(std::string(R"({"id":")") + id + R"(","terminal_id":"T02",)" + rest);
    EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidField) << id;
    EXPECT_EQ(bad.status().field(), "id") << id;
  }
  EXPECT_TRUE(DecodeEventRequest(R"({"id":"ev-2","terminal_id":"T02",)" + rest).ok());
}

TEST(StoreEventTest, DrawerCloseWithCountsMustAddUp) {
  const std::string base =
      R"({"id":"close-1","terminal_id":"T01","type":"drawer_close",)"
      R"("created_at":"2026-12-05T18:00:00Z","currency":"USD","counted":"212.35")";
  Result<StoreEvent> ok = DecodeEventRequest(
      base + R"(,"counts":[{"denomination":"20","count":10},{"denomination":"0.05","count":7},)"
             R"({"denomination":"12.00","count":0},{"denomination":"1","count":12}]})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->amount, 21235);
  ASSERT_EQ(ok->counts.size(), 4u);
  EXPECT_EQ(ok->counts[1].denomination, 5);
  EXPECT_EQ(ok->counts[1].count, 7);
  const std::string canonical = CanonicalEvent(*ok);
  EXPECT_NE(canonical.find(R"("counts":[{"denomination":"20.00","count":10},)"), std::string::npos);
  Result<StoreEvent> back = DecodeCanonicalEvent(canonical);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(CanonicalEvent(*back), canonical);

  Result<StoreEvent> mismatch =
      DecodeEventRequest(base + R"(,"counts":[{"denomination":"20","count":10}]})");
  EXPECT_EQ(mismatch.status().code(), ErrorCode::kTotalMismatch);
  EXPECT_EQ(mismatch.status().field(), "counts");

  Result<StoreEvent> twice = DecodeEventRequest(
      base + R"(,"counts":[{"denomination":"1","count":1},{"denomination":"1.00","count":2}]})");
  EXPECT_EQ(twice.status().code(), ErrorCode::kInvalidField);
  EXPECT_EQ(twice.status().field(), "counts[1].denomination");

  Result<StoreEvent> bad_count =
      DecodeEventRequest(base + R"(,"counts":[{"denomination":"1","count":-1}]})");
  EXPECT_EQ(bad_count.status().field(), "counts[0].count");
  Result<StoreEvent> frac_count =
      DecodeEventRequest(base + R"(,"counts":[{"denomination":"1","count":1.5}]})");
  EXPECT_EQ(frac_count.status().field(), "counts[0].count");
  Result<StoreEvent> unknown =
      DecodeEventRequest(base + R"(,"counts":[{"denomination":"1","count":1,"coin":true}]})");
  EXPECT_EQ(unknown.status().field(), "counts[0].coin");
  Result<StoreEvent> missing = DecodeEventRequest(
      R"({"id":"c","terminal_id":"T01","type":"drawer_close","created_at":"2026-12-05T18:00:00Z",)"
      R"("currency":"USD"})");
  EXPECT_EQ(missing.status().code(), ErrorCode::kMissingField);
  EXPECT_EQ(missing.status().field(), "counted");
}

TEST(StoreEventTest, RefusesBadBodiesWithStableCodes) {
  EXPECT_EQ(DecodeEventRequest("").status().code(), ErrorCode::kInvalidJson);
  EXPECT_EQ(DecodeEventRequest("[1]").status().code(), ErrorCode::kInvalidJson);
  EXPECT_EQ(DecodeEventRequest(R"({"id":"a","id":"b"})").status().code(), ErrorCode::kInvalidJson);
  // Duplicate keys nested in counts too.
  EXPECT_EQ(DecodeEventRequest(R"({"counts":[{"count":1,"count":2}]})").status().code(),
            ErrorCode::kInvalidJson);
  // A member of another event type is unknown for this one.
  Result<StoreEvent> other = DecodeEventRequest(
      R"({"id":"o","terminal_id":"T01","type":"drawer_open","created_at":"2026-12-05T08:00:00Z",)"
      R"("currency":"USD","amount":"1","reason":"x"})");
  EXPECT_EQ(other.status().code(), ErrorCode::kInvalidField);
  EXPECT_EQ(other.status().field(), "reason");
  // Terminals may not send a Z report, nor a sale, through the event decoder.
  for (const char* type : {"z_report", "sale", "refund", "party"}) {
    Result<StoreEvent> r =
        DecodeEventRequest(std::string(R"({"id":"o","terminal_id":"T01","type":")") + type +
                           R"(","created_at":"2026-12-05T08:00:00Z","currency":"USD"})");
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidField) << type;
    EXPECT_EQ(r.status().field(), "type") << type;
  }
  Result<StoreEvent> bad_id = DecodeEventRequest(
      R"({"id":"a b","terminal_id":"T01","type":"drawer_open","created_at":"2026-12-05T08:00:00Z",)"
      R"("currency":"USD","amount":"1"})");
  EXPECT_EQ(bad_id.status().field(), "id");
  Result<StoreEvent> bad_currency = DecodeEventRequest(
      R"({"id":"a","terminal_id":"T01","type":"drawer_open","created_at":"2026-12-05T08:00:00Z",)"
      R"("currency":"XXY","amount":"1"})");
  EXPECT_EQ(bad_currency.status().field(), "currency");
  Result<StoreEvent> bad_time = DecodeEventRequest(
      R"({"id":"a","terminal_id":"T01","type":"drawer_open","created_at":"yesterday",)"
      R"("currency":"USD","amount":"1"})");
  EXPECT_EQ(bad_time.status().field(), "created_at");
  Result<StoreEvent> control = DecodeEventRequest(
      R"({"id":"a","terminal_id":"T01","type":"cash_in","created_at":"2026-12-05T08:00:00Z",)"
      R"("currency":"USD","amount":"1","reason":"a\u0001b"})");
  EXPECT_EQ(control.status().field(), "reason");
}

TEST(StoreEventTest, ZRequestAndStoredZReportRoundTrip) {
  Result<StoreEvent> z =
      DecodeZRequest(R"({"id":"z-2026-12-05","created_at":"2026-12-05T22:00:00Z"})");
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->type, EventType::kZReport);
  EXPECT_TRUE(z->terminal_id.empty());
  EXPECT_EQ(DecodeZRequest(R"({"id":"z","created_at":"2026-12-05T22:00:00Z","amount":"1"})")
                .status()
                .field(),
            "amount");
  EXPECT_EQ(DecodeZRequest(R"({"created_at":"2026-12-05T22:00:00Z"})").status().code(),
            ErrorCode::kMissingField);

  StoreEvent stored = *z;
  stored.currency = "USD";
  stored.z_number = 3;
  stored.first_seq = 41;
  stored.last_seq = 97;
  stored.figures = R"({"currency":"USD","sales":{"count":2,"total":"4.00"}})";
  const std::string canonical = CanonicalEvent(stored);
  EXPECT_EQ(canonical,
            R"({"id":"z-2026-12-05","type":"z_report","created_at":"2026-12-05T22:00:00.000Z",)"
            R"("currency":"USD","z_number":3,"first_seq":41,"last_seq":97,)"
            R"("figures":{"currency":"USD","sales":{"count":2,"total":"4.00"}}})");
  Result<StoreEvent> back = DecodeCanonicalEvent(canonical);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->z_number, 3);
  EXPECT_EQ(back->first_seq, 41);
  EXPECT_EQ(back->last_seq, 97);
  EXPECT_EQ(back->figures, stored.figures);
  EXPECT_EQ(EntryTypeOf(canonical), "z_report");
}

TEST(StoreEventTest, StoredBytesMustBeExactlyCanonical) {
  Result<StoreEvent> event = DecodeEventRequest(kOpen);
  ASSERT_TRUE(event.ok());
  const std::string canonical = CanonicalEvent(*event);
  ASSERT_TRUE(DecodeCanonicalEvent(canonical).ok());
  // Same meaning, other bytes: not what the hub writes, so corruption.
  std::string spaced = canonical;
  spaced.insert(1, " ");
  EXPECT_EQ(DecodeCanonicalEvent(spaced).status().code(), ErrorCode::kInternal);
  std::string short_amount = canonical;
  short_amount.replace(short_amount.find("150.00"), 6, "150");
  EXPECT_EQ(DecodeCanonicalEvent(short_amount).status().code(), ErrorCode::kInternal);
  EXPECT_EQ(DecodeCanonicalEvent("{}").status().code(), ErrorCode::kInternal);
  EXPECT_EQ(EntryTypeOf(canonical), "drawer_open");
  EXPECT_EQ(EntryTypeOf(R"({"id":"s","terminal_id":"T","type":"refund"})"), "refund");
  EXPECT_EQ(EntryTypeOf("not json"), "");
}

TEST(StoreEventTest, EventsChainLikeSales) {
  // The record layout and chain step are the sale's: an event changes nothing but the
  // canonical bytes, and a changed byte changes the hash.
  Result<StoreEvent> event = DecodeEventRequest(kOpen);
  ASSERT_TRUE(event.ok());
  const std::string genesis = GenesisHash("store-1");
  const std::string record =
      CanonicalRecord(7, "", 1'764'921'600'000, false, CanonicalEvent(*event));
  EXPECT_EQ(
      record.rfind("machub-record-v1\nseq=7\nreceipt=\nreceived_at=1764921600000\nskew=0\n{", 0),
      0u);
  const std::string h1 = ChainHash(genesis, record);
  StoreEvent changed = *event;
  changed.amount += 1;
  const std::string h2 =
      ChainHash(genesis, CanonicalRecord(7, "", 1'764'921'600'000, false, CanonicalEvent(changed)));
  EXPECT_EQ(h1.size(), 32u);
  EXPECT_NE(h1, h2);
}

TEST(StoreEventTest, AuthorizationRequestAndStoredOutcomeRoundTrip) {
  Result<StoreEvent> a = DecodeAuthorizationRequest(
      R"({"id":"auth-1","result":"approved","auth_code":"A1B2C3"})", "s-17", 1);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->type, EventType::kPaymentAuthorization);
  EXPECT_EQ(a->sale_id, "s-17");
  EXPECT_EQ(a->payment_index, 1);
  EXPECT_EQ(a->result, "approved");
  EXPECT_EQ(a->created_at_ms, 0);  // the hub fills it
  Result<StoreEvent> d = DecodeAuthorizationRequest(
      R"({"id":"auth-2","result":"declined","reason":"insufficient funds",)"
      R"("created_at":"2026-12-05T22:00:00Z"})",
      "s-17", 0);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->reason, "insufficient funds");
  EXPECT_NE(d->created_at_ms, 0);

  // Bad bodies: stable codes and the field.
  auto field = [](std::string_view body) {
    return DecodeAuthorizationRequest(body, "s-17", 0).status().field();
  };
  EXPECT_EQ(field(R"({"id":"x","result":"maybe"})"), "result");
  EXPECT_EQ(field(R"({"id":"x"})"), "result");
  EXPECT_EQ(field(R"({"result":"approved"})"), "id");
  EXPECT_EQ(field(R"({"id":"x","result":"approved","amount":"1.00"})"), "amount");
  EXPECT_EQ(field(R"({"id":"x","result":"approved","terminal_id":"T01"})"), "terminal_id");
  Result<StoreEvent> card = DecodeAuthorizationRequest(
      R"({"id":"x","result":"declined","reason":"card 4111 1111 1111 1111 declined"})", "s-17", 0);
  EXPECT_EQ(card.status().code(), ErrorCode::kCardNumberForbidden);
  EXPECT_EQ(card.status().message().find("4111"), std::string::npos);
  EXPECT_EQ(
      DecodeAuthorizationRequest(R"({"id":"x","result":"approved"})", "..", 0).status().code(),
      ErrorCode::kNotFound);
  EXPECT_EQ(
      DecodeAuthorizationRequest(R"({"id":"x","result":"approved"})", "s", -1).status().field(),
      "payment_index");
  // A terminal cannot post one through /v1/events.
  EXPECT_EQ(DecodeEventRequest(R"({"id":"x","terminal_id":"T01","type":"payment_authorization",)"
                               R"("created_at":"2026-12-05T22:00:00Z","currency":"USD"})")
                .status()
                .field(),
            "type");

  StoreEvent stored = *a;
  stored.terminal_id = "T01";
  stored.currency = "USD";
  stored.amount = 1250;
  stored.created_at_ms = 1'764'921'600'000;
  const std::string canonical = CanonicalEvent(stored);
  EXPECT_EQ(canonical,
            R"({"id":"auth-1","terminal_id":"T01","type":"payment_authorization",)"
            R"("created_at":"2025-12-05T08:00:00.000Z","currency":"USD","sale_id":"s-17",)"
            R"("payment_index":1,"amount":"12.50","result":"approved","auth_code":"A1B2C3"})");
  Result<StoreEvent> back = DecodeCanonicalEvent(canonical);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->sale_id, "s-17");
  EXPECT_EQ(back->payment_index, 1);
  EXPECT_EQ(back->amount, 1250);
  EXPECT_EQ(back->auth_code, "A1B2C3");
}

TEST(StoreEventTest, TypeNames) {
  for (EventType t :
       {EventType::kDrawerOpen, EventType::kCashIn, EventType::kCashOut, EventType::kDrawerClose,
        EventType::kZReport, EventType::kPaymentAuthorization}) {
    EXPECT_EQ(EventTypeFromName(EventTypeName(t)), t);
    EXPECT_TRUE(IsEventTypeName(EventTypeName(t)));
  }
  EXPECT_FALSE(IsEventTypeName("sale"));
  EXPECT_FALSE(IsEventTypeName(""));
}

}  // namespace
}  // namespace machub::core
