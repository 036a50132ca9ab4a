#include "core/store_event.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <exception>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/card_number.h"
#include "core/currency.h"
#include "core/money.h"
#include "core/sha256.h"
#include "core/text.h"
#include "core/time_format.h"

namespace machub::core {
namespace {

using OJson = nlohmann::ordered_json;

constexpr int64_t kMaxAmount = 1'000'000'000'000'000;  // 10^15 minor units, as sales
constexpr size_t kMaxCounts = 50;
constexpr int64_t kMaxCount = 1'000'000;

constexpr std::array<std::string_view, 6> kTypeNames = {
    "drawer_open", "cash_in", "cash_out", "drawer_close", "z_report", "payment_authorization"};

// kTerminal: POST /v1/events; kZRequest: POST /v1/reports/z; kAuthRequest: an
// authorization outcome's body; kStored: canonical bytes read back.
enum class Mode { kTerminal, kZRequest, kAuthRequest, kStored };

Status Invalid(std::string_view field, std::string message) {
  return Status(ErrorCode::kInvalidField, std::move(message), std::string(field));
}
Status Missing(std::string_view field) {
  return Status(ErrorCode::kMissingField, std::string(field) + " is required", std::string(field));
}

// Parses with a check for duplicate keys in every object (nlohmann keeps the last copy
// silently; readers disagree on which wins, so such a body is refused).
Result<OJson> ParseStrict(std::string_view json) {
  std::vector<std::vector<std::string>> keys;
  bool duplicate = false;
  auto callback = [&](int /*depth*/, OJson::parse_event_t event, OJson& parsed) {
    switch (event) {
      case OJson::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case OJson::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case OJson::parse_event_t::key: {
        const auto& name = parsed.get_ref<const std::string&>();
        auto& seen = keys.back();
        if (std::find(seen.begin(), seen.end(), name) != seen.end()) duplicate = true;
        seen.push_back(name);
        break;
      }
      default:
        break;
    }
    return true;
  };
  OJson root;
  try {
    root = OJson::parse(json.begin(), json.end(), callback, /*allow_exceptions=*/true);
  } catch (const std::exception&) {
    // The library's message may quote the client's bytes: not repeated.
    return Status(ErrorCode::kInvalidJson, "request body is not valid JSON");
  }
  if (duplicate) {
    return Status(ErrorCode::kInvalidJson,
                  "request body has a duplicate key in an object, which JSON readers resolve "
                  "differently");
  }
  if (!root.is_object()) {
    return Status(ErrorCode::kInvalidJson, "request body must be a JSON object");
  }
  return root;
}

// The members each kind of body may carry.
std::vector<std::string_view> AllowedMembers(Mode mode, std::optional<EventType> type) {
  if (mode == Mode::kZRequest) return {"id", "created_at", "terminal_id", "cashier", "currency"};
  if (mode == Mode::kAuthRequest) return {"id", "created_at", "result", "auth_code", "reason"};
  std::vector<std::string_view> names = {"id",         "terminal_id", "type",
                                         "created_at", "currency",    "cashier"};
  auto add = [&](std::initializer_list<std::string_view> more) {
    for (std::string_view n : more) {
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
  };
  const bool any = !type.has_value();
  if (any || type == EventType::kDrawerOpen) add({"amount"});
  if (any || type == EventType::kCashIn || type == EventType::kCashOut) add({"amount", "reason"});
  if (any || type == EventType::kDrawerClose) add({"counted", "counts"});
  if (mode == Mode::kStored && (any || type == EventType::kZReport)) {
    add({"z_number", "first_seq", "last_seq", "figures"});
  }
  if (mode == Mode::kStored && (any || type == EventType::kPaymentAuthorization)) {
    add({"sale_id", "payment_index", "amount", "result", "auth_code", "reason"});
  }
  return names;
}

Status CheckUnknown(const OJson& root, Mode mode, std::optional<EventType> type) {
  const std::vector<std::string_view> allowed = AllowedMembers(mode, type);
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      return Invalid(PlainMemberName(it.key()) ? it.key() : "", "unknown field");
    }
    if (it.key() == "counts" && it->is_array()) {
      size_t i = 0;
      for (const OJson& element : *it) {
        if (element.is_object()) {
          for (auto m = element.begin(); m != element.end(); ++m) {
            if (m.key() != "denomination" && m.key() != "count") {
              const std::string path = "counts[" + std::to_string(i) + "]";
              return Invalid(PlainMemberName(m.key()) ? path + "." + m.key() : path,
                             "unknown field");
            }
          }
        }
        ++i;
      }
    }
  }
  return Status::Ok();
}

const OJson* Member(const OJson& root, std::string_view name) {
  const auto it = root.find(std::string(name));
  if (it == root.end() || it->is_null()) return nullptr;
  return &*it;
}

// A present string member (null and "" count as absent for optional members).
Status TakeString(const OJson& root, std::string_view name, bool required, std::string* out) {
  const OJson* value = Member(root, name);
  if (value == nullptr) return required ? Missing(name) : Status::Ok();
  if (!value->is_string()) return Invalid(name, std::string(name) + " must be a string");
  *out = value->get<std::string>();
  if (required && out->empty()) return Missing(name);
  return Status::Ok();
}

Status CheckText(std::string_view value, std::string_view field, int64_t min_chars,
                 int64_t max_chars) {
  RETURN_IF_ERROR(CheckNoCardNumber(value, field));
  const std::string problem = TextLengthProblem(Utf8TextLength(value), min_chars, max_chars);
  if (problem.empty()) return Status::Ok();
  return Invalid(field, std::string(field) + " " + problem);
}

Status TakeAmount(const OJson& root, std::string_view name, const Currency& currency, bool positive,
                  int64_t* out) {
  const OJson* value = Member(root, name);
  if (value == nullptr) return Missing(name);
  return [&]() -> Status {
    const std::string n(name);
    if (!value->is_string()) return Invalid(name, n + " must be a decimal string");
    switch (ParseDecimalTo(value->get_ref<const std::string&>(), currency.minor_units,
                           /*allow_negative=*/false, out)) {
      case DecimalError::kOk:
        break;
      case DecimalError::kSyntax:
        return Invalid(name, n + " must be a decimal amount such as \"3.50\"");
      case DecimalError::kTooManyPlaces:
        return Invalid(name, n + " has more decimal places than " + std::string(currency.code) +
                                 " allows (" + std::to_string(currency.minor_units) + ")");
      case DecimalError::kNegative:
        return Invalid(name, n + " must not be negative");
      case DecimalError::kOverflow:
        *out = INT64_MAX;
        break;
    }
    if (*out > kMaxAmount) {
      return Invalid(name, "amount too large: " + n + " must be at most 10^15 minor units");
    }
    if (positive && *out == 0) return Invalid(name, n + " must be greater than 0");
    return Status::Ok();
  }();
}

Status TakeInt(const OJson& root, std::string_view name, int64_t min, int64_t* out) {
  const OJson* value = Member(root, name);
  if (value == nullptr) return Missing(name);
  if (!value->is_number_integer()) return Invalid(name, std::string(name) + " must be an integer");
  if (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return Invalid(name, std::string(name) + " is out of range");
  }
  *out = value->get<int64_t>();
  if (*out < min) return Invalid(name, std::string(name) + " is out of range");
  return Status::Ok();
}

Status TakeCounts(const OJson& root, const Currency& currency, StoreEvent* event) {
  const OJson* value = Member(root, "counts");
  if (value == nullptr) return Status::Ok();
  if (!value->is_array()) return Invalid("counts", "counts must be an array");
  if (value->empty() || value->size() > kMaxCounts) {
    return Invalid("counts", "counts must have 1 to " + std::to_string(kMaxCounts) + " entries");
  }
  Int128 sum = 0;
  size_t i = 0;
  for (const OJson& element : *value) {
    const std::string path = "counts[" + std::to_string(i++) + "]";
    if (!element.is_object()) return Invalid(path, "each count must be an object");
    DenominationCount dc;
    Status st = TakeAmount(element, "denomination", currency, /*positive=*/true, &dc.denomination);
    if (!st.ok()) return Status(st.code(), st.message(), path + "." + st.field());
    const OJson* count = Member(element, "count");
    if (count == nullptr) return Missing(path + ".count");
    if (!count->is_number_integer() || count->get<int64_t>() < 0 ||
        (count->is_number_unsigned() && count->get<uint64_t>() > uint64_t{kMaxCount}) ||
        count->get<int64_t>() > kMaxCount) {
      return Invalid(path + ".count", "count must be an integer from 0 to 1000000");
    }
    dc.count = count->get<int64_t>();
    for (const DenominationCount& seen : event->counts) {
      if (seen.denomination == dc.denomination) {
        return Invalid(path + ".denomination", "each denomination may appear only once");
      }
    }
    sum += static_cast<Int128>(dc.denomination) * dc.count;
    event->counts.push_back(dc);
  }
  if (sum != event->amount) {
    return Status(ErrorCode::kTotalMismatch,
                  "the counts add up to " +
                      FormatAmount(sum > kMaxAmount ? kMaxAmount : static_cast<int64_t>(sum),
                                   currency.minor_units) +
                      ", not the counted amount",
                  "counts");
  }
  return Status::Ok();
}

Result<StoreEvent> Validate(const OJson& root, Mode mode) {
  std::optional<EventType> type;
  if (mode == Mode::kZRequest) {
    type = EventType::kZReport;
  } else if (mode == Mode::kAuthRequest) {
    type = EventType::kPaymentAuthorization;
  } else if (const OJson* t = Member(root, "type"); t != nullptr && t->is_string()) {
    type = EventTypeFromName(t->get_ref<const std::string&>());
    // The hub builds these two from their own routes; a terminal never sends them here.
    if ((type == EventType::kZReport || type == EventType::kPaymentAuthorization) &&
        mode == Mode::kTerminal) {
      type.reset();
    }
  }
  RETURN_IF_ERROR(CheckUnknown(root, mode, type));

  StoreEvent event;
  RETURN_IF_ERROR(TakeString(root, "id", true, &event.id));
  // As for sales: the id must start with a letter or digit ("." and ".." are no ids).
  const bool id_starts_safe =
      !event.id.empty() && std::isalnum(static_cast<unsigned char>(event.id[0])) != 0;
  if (event.id.size() > 64 || !IdCharacters(event.id, true) || !id_starts_safe) {
    return Invalid("id",
                   "id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-', "
                   "starting with a letter or digit");
  }
  if (mode != Mode::kStored) RETURN_IF_ERROR(CheckNoCardNumber(event.id, "id"));
  const bool terminal_required = type != EventType::kZReport && mode != Mode::kAuthRequest;
  RETURN_IF_ERROR(TakeString(root, "terminal_id", terminal_required, &event.terminal_id));
  if (mode != Mode::kStored) RETURN_IF_ERROR(CheckNoCardNumber(event.terminal_id, "terminal_id"));
  if (!event.terminal_id.empty() &&
      (event.terminal_id.size() > 32 || !IdCharacters(event.terminal_id, false))) {
    return Invalid("terminal_id",
                   "terminal_id must be 1 to 32 characters of A-Z, a-z, 0-9, '.', '_' or '-'");
  }
  if (mode != Mode::kZRequest && mode != Mode::kAuthRequest) {
    std::string name;
    RETURN_IF_ERROR(TakeString(root, "type", true, &name));
    if (!type.has_value()) {
      return Invalid("type", mode == Mode::kTerminal
                                 ? "type must be \"drawer_open\", \"cash_in\", \"cash_out\" or "
                                   "\"drawer_close\""
                                 : "type is not a store event type");
    }
  }
  event.type = *type;
  std::string text;
  RETURN_IF_ERROR(TakeString(root, "created_at", mode != Mode::kAuthRequest, &text));
  const Result<int64_t> created =
      text.empty() && mode == Mode::kAuthRequest ? Result<int64_t>(int64_t{0}) : ParseRfc3339(text);
  if (!created.ok()) {
    return Invalid("created_at",
                   "created_at must be an RFC 3339 time such as "
                   "\"2026-11-27T10:15:00Z\"");
  }
  event.created_at_ms = *created;
  const Currency* currency = nullptr;
  // A Z request may name the report's currency; without it the journal picks one
  // (SaleJournal::AppendEvent).
  const bool currency_from_hub = mode == Mode::kZRequest || mode == Mode::kAuthRequest;
  RETURN_IF_ERROR(TakeString(root, "currency", !currency_from_hub, &event.currency));
  if (!currency_from_hub || !event.currency.empty()) {
    currency = FindCurrency(event.currency);
    if (currency == nullptr) return Invalid("currency", "currency is not a known ISO 4217 code");
  }
  RETURN_IF_ERROR(TakeString(root, "cashier", false, &event.cashier));
  if (!event.cashier.empty()) RETURN_IF_ERROR(CheckText(event.cashier, "cashier", 1, 64));

  switch (event.type) {
    case EventType::kDrawerOpen:
      RETURN_IF_ERROR(TakeAmount(root, "amount", *currency, false, &event.amount));
      break;
    case EventType::kCashIn:
    case EventType::kCashOut:
      RETURN_IF_ERROR(TakeAmount(root, "amount", *currency, true, &event.amount));
      RETURN_IF_ERROR(TakeString(root, "reason", true, &event.reason));
      RETURN_IF_ERROR(CheckText(event.reason, "reason", 1, 200));
      break;
    case EventType::kDrawerClose:
      RETURN_IF_ERROR(TakeAmount(root, "counted", *currency, false, &event.amount));
      RETURN_IF_ERROR(TakeCounts(root, *currency, &event));
      break;
    case EventType::kZReport:
      if (mode == Mode::kStored) {
        RETURN_IF_ERROR(TakeInt(root, "z_number", 1, &event.z_number));
        RETURN_IF_ERROR(TakeInt(root, "first_seq", 1, &event.first_seq));
        RETURN_IF_ERROR(TakeInt(root, "last_seq", 0, &event.last_seq));
        const OJson* figures = Member(root, "figures");
        if (figures == nullptr) return Missing("figures");
        if (!figures->is_object()) return Invalid("figures", "figures must be an object");
        event.figures = figures->dump();
      }
      break;
    case EventType::kPaymentAuthorization:
      if (mode == Mode::kStored) {
        RETURN_IF_ERROR(TakeString(root, "sale_id", true, &event.sale_id));
        RETURN_IF_ERROR(TakeInt(root, "payment_index", 0, &event.payment_index));
        RETURN_IF_ERROR(TakeAmount(root, "amount", *currency, false, &event.amount));
      }
      RETURN_IF_ERROR(TakeString(root, "result", true, &event.result));
      if (event.result != "approved" && event.result != "declined") {
        return Invalid("result", "result must be \"approved\" or \"declined\"");
      }
      RETURN_IF_ERROR(TakeString(root, "auth_code", false, &event.auth_code));
      if (!event.auth_code.empty()) RETURN_IF_ERROR(CheckText(event.auth_code, "auth_code", 1, 64));
      RETURN_IF_ERROR(TakeString(root, "reason", false, &event.reason));
      if (!event.reason.empty()) RETURN_IF_ERROR(CheckText(event.reason, "reason", 1, 200));
      break;
  }
  return event;
}

}  // namespace

std::string_view EventTypeName(EventType type) { return kTypeNames[static_cast<size_t>(type)]; }

std::optional<EventType> EventTypeFromName(std::string_view name) {
  for (size_t i = 0; i < kTypeNames.size(); ++i) {
    if (kTypeNames[i] == name) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

bool IsEventTypeName(std::string_view name) { return EventTypeFromName(name).has_value(); }

Result<StoreEvent> DecodeEventRequest(std::string_view json) {
  ASSIGN_OR_RETURN(const OJson root, ParseStrict(json));
  return Validate(root, Mode::kTerminal);
}

Result<StoreEvent> DecodeZRequest(std::string_view json) {
  ASSIGN_OR_RETURN(const OJson root, ParseStrict(json));
  return Validate(root, Mode::kZRequest);
}

Result<StoreEvent> DecodeAuthorizationRequest(std::string_view json, std::string_view sale_id,
                                              int64_t payment_index) {
  const bool id_starts_safe =
      !sale_id.empty() && std::isalnum(static_cast<unsigned char>(sale_id[0])) != 0;
  if (sale_id.size() > 64 || !IdCharacters(sale_id, true) || !id_starts_safe) {
    return Status(ErrorCode::kNotFound, "no sale with this id", "sale_id");
  }
  if (payment_index < 0 || payment_index > 1000) {
    return Invalid("payment_index", "payment_index must be a payment's index in the sale");
  }
  ASSIGN_OR_RETURN(const OJson root, ParseStrict(json));
  ASSIGN_OR_RETURN(StoreEvent event, Validate(root, Mode::kAuthRequest));
  event.sale_id = std::string(sale_id);
  event.payment_index = payment_index;
  return event;
}

std::string CanonicalEvent(const StoreEvent& event) {
  const Currency* currency = FindCurrency(event.currency);
  const int minor = currency != nullptr ? currency->minor_units : 2;
  OJson j = OJson::object();
  j["id"] = event.id;
  if (!event.terminal_id.empty()) j["terminal_id"] = event.terminal_id;
  j["type"] = EventTypeName(event.type);
  j["created_at"] = FormatRfc3339(event.created_at_ms);
  j["currency"] = event.currency;
  if (!event.cashier.empty()) j["cashier"] = event.cashier;
  switch (event.type) {
    case EventType::kDrawerOpen:
      j["amount"] = FormatAmount(event.amount, minor);
      break;
    case EventType::kCashIn:
    case EventType::kCashOut:
      j["amount"] = FormatAmount(event.amount, minor);
      j["reason"] = event.reason;
      break;
    case EventType::kDrawerClose:
      j["counted"] = FormatAmount(event.amount, minor);
      if (!event.counts.empty()) {
        OJson counts = OJson::array();
        for (const DenominationCount& dc : event.counts) {
          OJson c = OJson::object();
          c["denomination"] = FormatAmount(dc.denomination, minor);
          c["count"] = dc.count;
          counts.push_back(std::move(c));
        }
        j["counts"] = std::move(counts);
      }
      break;
    case EventType::kPaymentAuthorization:
      j["sale_id"] = event.sale_id;
      j["payment_index"] = event.payment_index;
      j["amount"] = FormatAmount(event.amount, minor);
      j["result"] = event.result;
      if (!event.auth_code.empty()) j["auth_code"] = event.auth_code;
      if (!event.reason.empty()) j["reason"] = event.reason;
      break;
    case EventType::kZReport: {
      j["z_number"] = event.z_number;
      j["first_seq"] = event.first_seq;
      j["last_seq"] = event.last_seq;
      OJson figures = OJson::parse(event.figures, nullptr, /*allow_exceptions=*/false);
      j["figures"] = figures.is_object() ? std::move(figures) : OJson::object();
      break;
    }
  }
  // Text fields were validated as UTF-8 on the way in; replace keeps a hand-built event
  // with broken bytes printable instead of throwing.
  return j.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

std::string StoredEventJson(const StoreEvent& event, const EntryPlace& place) {
  const OJson canonical = OJson::parse(CanonicalEvent(event), nullptr, /*allow_exceptions=*/false);
  OJson j = OJson::object();
  j["id"] = event.id;
  j["seq"] = place.seq;
  j["receipt_no"] = std::string(place.receipt_no);
  for (auto it = canonical.begin(); it != canonical.end(); ++it) {
    if (it.key() == "id") continue;
    if (it.key() == "currency") {
      j["received_at"] = FormatRfc3339(place.received_at_ms);
      j["clock_skew"] = place.clock_skew;
      if (place.clock_untrusted) j["clock_untrusted"] = true;
    }
    j[it.key()] = it.value();
  }
  j["hash"] = ToHex(place.hash);
  j["prev_hash"] = ToHex(place.prev_hash);
  j["uploaded"] = place.uploaded;
  return j.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

Result<StoreEvent> DecodeCanonicalEvent(std::string_view canonical) {
  Result<OJson> root = ParseStrict(canonical);
  if (!root.ok()) {
    return Status(ErrorCode::kInternal,
                  "stored event does not decode: " + root.status().ToString());
  }
  Result<StoreEvent> event = Validate(*root, Mode::kStored);
  if (!event.ok()) {
    return Status(ErrorCode::kInternal,
                  "stored event does not decode: " + event.status().ToString());
  }
  if (CanonicalEvent(*event) != canonical) {
    return Status(ErrorCode::kInternal, "stored event is not in canonical form");
  }
  return event;
}

std::string EntryTypeOf(std::string_view canonical) {
  // Canonical entries (sales and events) put "type" among the first three members with a
  // plain ASCII value; a full parse is the fallback for anything else.
  const OJson root = OJson::parse(canonical, nullptr, /*allow_exceptions=*/false);
  if (!root.is_object()) return {};
  const auto it = root.find("type");
  if (it == root.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

}  // namespace machub::core
