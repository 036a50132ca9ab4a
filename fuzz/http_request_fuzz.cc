// Fuzz target: the request path as the hub's server sees it. The input is the byte stream
// of one connection. It is fed to boost::beast's request_parser configured and checked as
// http::Server does (http/request_checks.h: limits, request smuggling, read errors), in
// fragments (the first input byte picks the fragment size, so incremental parsing of
// headers and chunked bodies is covered), with pipelined requests handled in turn while
// keep-alive holds. Each complete request goes through http::ApiHandler over an in-memory
// journal that answers synchronously.
//
// Invariants: the handler answers exactly once with a status 100..599; JSON answers are
// JSON; no answer echoes the bearer token. Issue 13: a request that passes the header
// checks has at most one Authorization and a plain decimal Content-Length; the auth-before-
// body check (ApiHandler::CheckHeader) only ever answers 401/429, and a request it lets
// through with a body to POST /v1/sales carries the valid token; no stored sale holds a
// card number in any free-text field; a sale's change never comes from card payments.
// Issue 8: the same holds for store events (POST /v1/events, POST /v1/reports/z) over the
// in-memory journal's drawer and Z rules; an event is stored only for the token's own
// terminal (a Z report: the manager's, or none); the report routes (x, z/last, drawers)
// answer JSON. Issue 9: offline card payments under small limits (card 50.00, terminal
// 80.00, store 100.00): the outstanding exposure never passes a limit, and a
// payment_authorization is stored only for an offline payment of a stored sale, once,
// with approved|declined and no card number in its reason or auth_code
// (POST /v1/sales/{id}/payments/{index}/authorization, GET /v1/offline-payments,
// /v1/offline, /v1/alerts). The fuzzer holds a terminal token (T01) and a manager
// token (M01), so both sides of every role check are reachable.

#include <boost/beast/core/buffers_prefix.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/card_number.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "fuzz_check.h"
#include "http/api.h"
#include "http/auth.h"
#include "http/request_checks.h"
#include "http/server.h"
#include "journal/sale_journal.h"
#include "manual_clock.h"
#include "memory_journal.h"

namespace {

namespace bhttp = boost::beast::http;
using machub::fuzz::Check;
using namespace machub;

constexpr const char* kToken = "fuzz-token-T01-0123456789";           // role terminal
constexpr const char* kManagerToken = "fuzz-manager-M01-0123456789";  // role manager

// The in-memory journal of tests/support (the real one's idempotency, refund, drawer and
// Z report rules; answers synchronously), with checks on everything it stores.
class CheckedJournal final : public machub::testing::MemoryJournal {
 public:
  using MemoryJournal::MemoryJournal;

 private:
  void OnStored(const core::StoredSale& stored) override {
    if (stored.is_event()) {
      CheckEvent(*stored.event);
    } else {
      CheckSale(stored.sale);
    }
  }

  // Whatever the validation accepted must hold no card number in any free-text field, and
  // card (non-cash) payments must not exceed the total.
  static void CheckSale(const core::Sale& sale) {
    for (const std::string* text : {&sale.id, &sale.terminal_id, &sale.ref, &sale.cashier}) {
      Check(!core::ContainsCardNumber(*text), "card number stored in a sale field");
    }
    int64_t non_cash = 0;
    for (const auto& line : sale.lines) {
      Check(!core::ContainsCardNumber(line.sku) && !core::ContainsCardNumber(line.name),
            "card number stored in a line");
    }
    for (const auto& p : sale.payments) {
      for (const std::string* text : {&p.method, &p.card_token, &p.last4, &p.brand, &p.auth_code}) {
        Check(!core::ContainsCardNumber(*text), "card number stored in a payment");
      }
      if (p.method != "cash") non_cash += p.amount;
    }
    if (sale.type == core::SaleType::kSale) {
      Check(non_cash <= sale.total, "change given from a card payment");
    }
    Check(!sale.id.empty() && sale.id != "." && sale.id != "..", "unsafe sale id stored");
  }

  // A store event: no card number in its text, only the token's terminal (the fuzzer
  // holds T01's and M01's tokens), amounts as the decoder promises.
  static void CheckEvent(const core::StoreEvent& event) {
    if (event.type == core::EventType::kPaymentAuthorization) {
      Check(event.result == "approved" || event.result == "declined", "bad outcome stored");
      Check(!core::ContainsCardNumber(event.auth_code), "card number stored in an auth_code");
      Check(!event.sale_id.empty() && event.payment_index >= 0, "outcome without its payment");
    }
    for (const std::string* text : {&event.id, &event.terminal_id, &event.cashier, &event.reason}) {
      Check(!core::ContainsCardNumber(*text), "card number stored in an event field");
    }
    Check(!event.id.empty() && event.id != "." && event.id != "..", "unsafe event id stored");
    Check(event.amount >= 0, "negative event amount stored");
    if (event.type == core::EventType::kZReport) {
      Check(event.terminal_id.empty() || event.terminal_id == "M01",
            "Z report stored for another terminal than the manager token's");
    } else {
      Check(event.terminal_id == "T01" || event.terminal_id == "M01",
            "event stored for a terminal no token names");
    }
  }
};

// FUZZ_DEBUG=1: print each answer (for reading a reproduced input).
bool Debug() {
  static const bool debug = std::getenv("FUZZ_DEBUG") != nullptr;
  return debug;
}

// `request`: what was sent, when it was read whole. The token a request presents is never
// in the answer, even when the body holds it too; the other token only when the request
// itself carried its text (the hub keeps hashes, it cannot recognise another's token).
void CheckResponse(const std::optional<http::Response>& response,
                   const http::Request* request = nullptr) {
  Check(response.has_value(), "handler did not answer");
  Check(response->status >= 100 && response->status <= 599, "status out of range");
  for (const char* token : {kToken, kManagerToken}) {
    if (request != nullptr && http::BearerToken(request->Header("authorization")) != token &&
        (request->body.find(token) != std::string::npos ||
         request->target.find(token) != std::string::npos)) {
      continue;
    }
    Check(response->body.find(token) == std::string::npos, "token echoed in body");
    for (const auto& [name, value] : response->headers) {
      Check(value.find(token) == std::string::npos, "token echoed in a header");
    }
  }
  if (response->content_type.starts_with("application/json") && !response->body.empty()) {
    Check(nlohmann::json::accept(response->body), "JSON answer is not JSON");
  }
}

}  // namespace

// Warnings (one per refused request) would cost more than the request itself; errors
// still go to stderr.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  core::SetLogLevel(Debug() ? core::LogLevel::kDebug : core::LogLevel::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // Small limits so that the 413/431 paths are reachable by small inputs; the logic is
  // the server's own (ConfigureRequestParser / ReadErrorAnswer).
  http::ServerOptions options;
  options.body_limit = 4096;
  options.header_limit = 2048;
  const size_t fragment = 1 + data[0] % 64;
  const std::string_view stream = machub::fuzz::AsText(data + 1, size - 1);

  machub::testing::ManualClock clock(1'790'000'000'000);
  CheckedJournal journal(&clock);
  http::ApiOptions api_options;
  api_options.tokens.push_back({"T01", http::HashToken(kToken)});
  api_options.tokens.push_back({"M01", http::HashToken(kManagerToken), 0, http::Role::kManager});
  api_options.rate_per_terminal = 0;  // unlimited: the outcome must not depend on timing
  api_options.reports_inline = true;  // every answer before Handle returns
  journal::OfflineLimits limits;
  limits.card_max_amount = "50.00";
  limits.terminal_max_outstanding = "80.00";
  limits.store_max_outstanding = "100.00";
  journal.SetOfflineLimits(limits);
  http::ApiHandler handler(api_options, &journal, nullptr, &clock);

  size_t consumed = 0;  // bytes the parsers took (the server's buffer front)
  size_t arrived = 0;   // bytes "read from the socket" so far
  for (int request_no = 0; request_no < 8 && consumed < stream.size(); ++request_no) {
    bhttp::request_parser<bhttp::string_body> parser;
    http::ConfigureRequestParser(parser, options);
    bool header_checked = false;
    std::optional<http::EarlyError> early;
    bool hard_close = false;
    // What the server does with a read error: answer (early) or close without one.
    auto read_error = [&](const boost::beast::error_code& ec) {
      early = http::ReadErrorAnswer(ec, options);
      hard_close = !early;
    };
    while (!parser.is_done()) {
      if (!header_checked && parser.is_header_done()) {
        header_checked = true;
        early = http::CheckRequestHeader(parser.get());
        if (early) break;
        const auto& header = parser.get();
        Check(header.count(bhttp::field::authorization) <= 1, "two Authorization headers passed");
        Check(header.count(bhttp::field::content_length) <= 1, "two Content-Length passed");
        // Auth before body, as the server does it (server.h header_check).
        http::Request head;
        head.method = std::string(header.method_string());
        head.target = std::string(header.target());
        for (const auto& field : header) {
          head.headers.emplace_back(core::AsciiLower(std::string_view(field.name_string().data(),
                                                                      field.name_string().size())),
                                    std::string(field.value().data(), field.value().size()));
        }
        head.remote_address = "127.0.0.1";
        if (std::optional<http::Response> refused = handler.CheckHeader(head)) {
          Check(refused->status == 401 || refused->status == 429, "header check: other status");
          CheckResponse(refused);
          return 0;  // the connection closes; the body is never read
        }
        parser.eager(true);  // bhttp::async_read of the body, as the server does
        continue;
      }
      if (arrived == consumed) {
        if (arrived == stream.size()) {  // the peer closed its side
          boost::beast::error_code ec;
          parser.put_eof(ec);
          if (ec) read_error(ec);
          break;
        }
        arrived = std::min(stream.size(), arrived + fragment);
      }
      boost::beast::error_code ec;
      const size_t used =
          parser.put(boost::asio::const_buffer(stream.data() + consumed, arrived - consumed), ec);
      consumed += used;
      if (ec == bhttp::error::need_more) {
        if (used > 0) continue;
        if (arrived == stream.size()) {  // incomplete, and nothing more will come
          boost::beast::error_code eof;
          parser.put_eof(eof);
          if (eof) read_error(eof);
          break;
        }
        arrived = std::min(stream.size(), arrived + fragment);
        continue;
      }
      if (ec) {
        read_error(ec);
        break;
      }
    }
    if (early && Debug())
      std::fprintf(stderr, "early answer: %d %s\n", early->status, early->message.c_str());
    if (early) {
      Check(early->status == 400 || early->status == 413 || early->status == 431,
            "unexpected early status");
      Check(!early->code.empty() && !early->message.empty(), "early error without text");
      return 0;  // the connection closes after an early answer
    }
    if (hard_close || !parser.is_done()) return 0;

    const bool keep_alive = parser.get().keep_alive();
    http::Request request = http::ToRequest(parser.release(), "127.0.0.1");
    const http::Request sent = request;
    std::optional<http::Response> response;
    int calls = 0;
    handler.Handle(std::move(request), [&](http::Response r) {
      ++calls;
      response = std::move(r);
    });
    Check(calls == 1, "respond not called exactly once");
    if (Debug()) {
      std::fprintf(stderr, "request %d: %d %s\n", request_no, response->status,
                   response->body.substr(0, 160).c_str());
    }
    CheckResponse(response, &sent);
    if (Result<journal::OfflineExposure> e = journal.ReadOfflineExposure(); e.ok()) {
      Check(e->store <= 10000, "offline exposure passed the store limit");
      for (const auto& [terminal, amount] : e->terminals) {
        Check(amount <= 8000, "offline exposure passed a terminal limit");
      }
    }
    if (!keep_alive) return 0;
  }
  return 0;
}
