#include "core/sale_codec.h"

#include <charconv>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "core/card_number.h"
#include "core/currency.h"
#include "core/money.h"
#include "core/sha256.h"
#include "core/text.h"
#include "core/time_format.h"

namespace machub::core {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxLines = 1000;
constexpr size_t kMaxPayments = 20;
constexpr int64_t kMaxQtyMilli = 1'000'000'000;        // 1,000,000 units
constexpr int64_t kMaxTaxRateMicro = 1'000'000;        // 100 %
constexpr int64_t kMaxAmount = 1'000'000'000'000'000;  // 10^15 minor units, any sum

// ---------------------------------------------------------------------------------------
// Stage 1: a SAX pass that sorts the body into fixed slots.
//
// Why SAX and not a DOM: a DOM (nlohmann::json) silently keeps the last of two duplicate
// keys, allocates a map node per member, and would need a second walk to find unknown
// fields. The SAX pass sees every key exactly once, moves each string straight into its
// slot, and leaves all judgement to stage 2, which walks the slots in a fixed order so
// that the error reported for a body with several problems does not depend on the order
// of its keys.
// ---------------------------------------------------------------------------------------

enum class Kind : uint8_t { kAbsent, kNull, kBool, kNumber, kString, kArray, kObject };

struct Raw {
  Kind kind = Kind::kAbsent;
  bool boolean = false;
  std::string str;
};

enum RootField : int {
  kId,
  kTerminalId,
  kType,
  kRef,
  kCreatedAt,
  kCurrency,
  kCashier,
  kLines,
  kPayments,
  kTotal,
  kRootFieldCount
};
constexpr std::string_view kRootNames[kRootFieldCount] = {
    "id",       "terminal_id", "type",  "ref",      "created_at",
    "currency", "cashier",     "lines", "payments", "total"};

enum LineField : int { kSku, kName, kQty, kUnitPrice, kDiscount, kTaxRate, kLineFieldCount };
constexpr std::string_view kLineNames[kLineFieldCount] = {"sku",        "name",     "qty",
                                                          "unit_price", "discount", "tax_rate"};

enum PaymentField : int {
  kMethod,
  kAmount,
  kCardToken,
  kLast4,
  kBrand,
  kAuthCode,
  kOffline,
  kPaymentFieldCount
};
constexpr std::string_view kPaymentNames[kPaymentFieldCount] = {
    "method", "amount", "card_token", "last4", "brand", "auth_code", "offline"};

struct RawLine {
  Kind kind = Kind::kAbsent;  // of the array element; kObject when it is a line
  Raw f[kLineFieldCount];
};

struct RawPayment {
  Kind kind = Kind::kAbsent;
  Raw f[kPaymentFieldCount];
};

struct RawSale {
  Raw f[kRootFieldCount];  // for lines/payments only `kind` is used
  std::vector<RawLine> lines;
  std::vector<RawPayment> payments;
  size_t line_count = 0;  // elements seen; more than stored when over the limit
  size_t payment_count = 0;
  std::string unknown_field;  // path of the first unknown member, in document order
  bool has_unknown = false;
};

template <size_t N>
int FindName(const std::string_view (&names)[N], std::string_view key) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == key) return static_cast<int>(i);
  }
  return -1;
}

class SaxHandler {
 public:
  enum class Failure { kNone, kSyntax, kDuplicateKey, kNotObject };

  explicit SaxHandler(RawSale* raw) : raw_(raw) { frames_.reserve(8); }

  Failure failure() const { return failure_; }
  size_t error_position() const { return error_position_; }

  // --- nlohmann SAX interface ---
  bool null() { return Scalar(Kind::kNull, nullptr, false); }
  bool boolean(bool value) { return Scalar(Kind::kBool, nullptr, value); }
  bool number_integer(Json::number_integer_t /*value*/) {
    return Scalar(Kind::kNumber, nullptr, false);
  }
  bool number_unsigned(Json::number_unsigned_t /*value*/) {
    return Scalar(Kind::kNumber, nullptr, false);
  }
  bool number_float(Json::number_float_t /*value*/, const Json::string_t& /*text*/) {
    return Scalar(Kind::kNumber, nullptr, false);
  }
  bool string(Json::string_t& value) { return Scalar(Kind::kString, &value, false); }
  bool binary(Json::binary_t& /*value*/) { return Scalar(Kind::kObject, nullptr, false); }

  bool start_object(std::size_t /*size*/) {
    if (depth_ == 0) {
      Push(FrameType::kRoot, raw_->f);
      return true;
    }
    Frame& top = Top();
    switch (top.type) {
      case FrameType::kLines:
        Push(FrameType::kLine, NewLine(Kind::kObject)->f);
        return true;
      case FrameType::kPayments:
        Push(FrameType::kPayment, NewPayment(Kind::kObject)->f);
        return true;
      default:
        TakeSlot(top, Kind::kObject);
        Push(FrameType::kSkipObject, nullptr);
        return true;
    }
  }

  bool start_array(std::size_t /*size*/) {
    if (depth_ == 0) return Fail(Failure::kNotObject);
    Frame& top = Top();
    switch (top.type) {
      case FrameType::kRoot:
        if (top.pending == kLines || top.pending == kPayments) {
          const FrameType type = top.pending == kLines ? FrameType::kLines : FrameType::kPayments;
          TakeSlot(top, Kind::kArray);
          Push(type, nullptr);
          return true;
        }
        TakeSlot(top, Kind::kArray);
        Push(FrameType::kSkipArray, nullptr);
        return true;
      case FrameType::kLines:
        NewLine(Kind::kArray);
        Push(FrameType::kSkipArray, nullptr);
        return true;
      case FrameType::kPayments:
        NewPayment(Kind::kArray);
        Push(FrameType::kSkipArray, nullptr);
        return true;
      default:
        TakeSlot(top, Kind::kArray);
        Push(FrameType::kSkipArray, nullptr);
        return true;
    }
  }

  bool key(Json::string_t& key) {
    Frame& top = Top();
    int index = -1;
    switch (top.type) {
      case FrameType::kRoot:
        index = FindName(kRootNames, key);
        break;
      case FrameType::kLine:
        index = FindName(kLineNames, key);
        break;
      case FrameType::kPayment:
        index = FindName(kPaymentNames, key);
        break;
      default:
        break;
    }
    if (index >= 0) {
      if (top.slots[index].kind != Kind::kAbsent) return Fail(Failure::kDuplicateKey);
      top.pending = index;
      return true;
    }
    // Unknown members (and every member of a skipped object) are remembered only to
    // catch duplicates; objects are small, so a linear scan beats a hash set.
    for (const std::string& seen : top.keys) {
      if (seen == key) return Fail(Failure::kDuplicateKey);
    }
    top.keys.push_back(key);
    top.pending = -1;
    if (!raw_->has_unknown && top.type != FrameType::kSkipObject) {
      raw_->has_unknown = true;
      raw_->unknown_field =
          PathOfMember(top.type, PlainMemberName(key) ? std::string_view(key) : "");
    }
    return true;
  }

  bool end_object() {
    --depth_;
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }

  bool parse_error(std::size_t position, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*ex*/) {
    // The library's message quotes the offending input, which may be anything a client
    // sent (a card number); only the position is kept.
    error_position_ = position;
    return Fail(Failure::kSyntax);
  }

 private:
  enum class FrameType { kRoot, kLines, kPayments, kLine, kPayment, kSkipObject, kSkipArray };

  struct Frame {
    FrameType type = FrameType::kSkipArray;
    int pending = -1;  // slot index of the member whose value comes next; -1: skip it
    Raw* slots = nullptr;
    std::vector<std::string> keys;
  };

  Frame& Top() { return frames_[depth_ - 1]; }

  void Push(FrameType type, Raw* slots) {
    if (depth_ == frames_.size()) frames_.emplace_back();
    Frame& frame = frames_[depth_++];
    frame.type = type;
    frame.pending = -1;
    frame.slots = slots;
    frame.keys.clear();  // keeps capacity: frames are reused across siblings
  }

  // Records the kind of the value of the pending member (if the member is known).
  Raw* TakeSlot(Frame& frame, Kind kind) {
    if (frame.slots == nullptr || frame.pending < 0) return nullptr;
    Raw* slot = &frame.slots[frame.pending];
    slot->kind = kind;
    frame.pending = -1;
    return slot;
  }

  bool Scalar(Kind kind, Json::string_t* text, bool boolean) {
    if (depth_ == 0) return Fail(Failure::kNotObject);
    Frame& top = Top();
    switch (top.type) {
      case FrameType::kLines:
        NewLine(kind);
        return true;
      case FrameType::kPayments:
        NewPayment(kind);
        return true;
      default:
        break;
    }
    if (Raw* slot = TakeSlot(top, kind)) {
      slot->boolean = boolean;
      if (text != nullptr) slot->str = std::move(*text);
    }
    return true;
  }

  RawLine* NewLine(Kind kind) {
    ++raw_->line_count;
    RawLine* line = &scratch_line_;
    if (raw_->lines.size() < kMaxLines) {
      if (raw_->lines.empty()) raw_->lines.reserve(4);
      line = &raw_->lines.emplace_back();
    } else {
      scratch_line_ = RawLine{};  // over the limit: parsed for errors, then dropped
    }
    line->kind = kind;
    return line;
  }

  RawPayment* NewPayment(Kind kind) {
    ++raw_->payment_count;
    RawPayment* payment = &scratch_payment_;
    if (raw_->payments.size() < kMaxPayments) {
      if (raw_->payments.empty()) raw_->payments.reserve(2);
      payment = &raw_->payments.emplace_back();
    } else {
      scratch_payment_ = RawPayment{};
    }
    payment->kind = kind;
    return payment;
  }

  std::string PathOfMember(FrameType type, std::string_view key) const {
    std::string path;
    if (type == FrameType::kLine) {
      path = "lines[" + std::to_string(raw_->line_count - 1) + "]";
    } else if (type == FrameType::kPayment) {
      path = "payments[" + std::to_string(raw_->payment_count - 1) + "]";
    }
    if (!key.empty()) {
      if (!path.empty()) path.push_back('.');
      path.append(key);
    }
    return path;
  }

  bool Fail(Failure failure) {
    if (failure_ == Failure::kNone) failure_ = failure;
    return false;  // stops the parser
  }

  RawSale* raw_;
  std::vector<Frame> frames_;
  size_t depth_ = 0;
  RawLine scratch_line_;
  RawPayment scratch_payment_;
  Failure failure_ = Failure::kNone;
  size_t error_position_ = 0;
};

// ---------------------------------------------------------------------------------------
// Stage 2: validation in a fixed order, computing the amounts.
// ---------------------------------------------------------------------------------------

using Path = FieldPath;

constexpr Path Root(std::string_view name) { return Path(name); }

Status Invalid(const Path& path, std::string message) {
  return Status(ErrorCode::kInvalidField, std::move(message), path.str());
}

Status Missing(const Path& path, std::string message) {
  return Status(ErrorCode::kMissingField, std::move(message), path.str());
}

bool IsNullish(const Raw& raw) { return raw.kind == Kind::kAbsent || raw.kind == Kind::kNull; }

// A present string (null counts as absent). Missing: kMissingField when `required`.
// Any other JSON type: kInvalidField.
Status TakeString(Raw& raw, const Path& path, bool required, std::string* out,
                  bool* present = nullptr) {
  if (present != nullptr) *present = false;
  if (IsNullish(raw)) {
    if (required) return Missing(path, path.Name() + " is required");
    return Status::Ok();
  }
  if (raw.kind != Kind::kString) return Invalid(path, path.Name() + " must be a string");
  *out = std::move(raw.str);
  if (present != nullptr) *present = true;
  return Status::Ok();
}

Status CheckText(const std::string& value, const Path& path, int64_t min_chars, int64_t max_chars) {
  const std::string problem = TextLengthProblem(Utf8TextLength(value), min_chars, max_chars);
  if (problem.empty()) return Status::Ok();
  return Invalid(path, path.Name() + " " + problem);
}

// Request-only rules (card numbers, id first character, card overpayment) are skipped for
// bytes the journal already stored: a row written before a rule was added must stay
// readable, and the stored-row reader (TryDecodeCanonicalLayout) skips them too.
enum class Rules { kRequest, kStored };

bool AsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Sale ids name files, S3 keys and URL path segments downstream: the first character is a
// letter or digit, so ".", "..", ".hidden" and "-flag" are refused.
Status CheckSaleId(const std::string& value, const Path& path, Rules rules) {
  if (value.empty() || value.size() > 64 ||
      (rules == Rules::kRequest && !AsciiAlnum(value.front())) || !IdCharacters(value, true)) {
    return Invalid(path, path.Name() +
                             " must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', ':' or "
                             "'-', starting with a letter or digit");
  }
  return Status::Ok();
}

// The message never quotes the value: refusing a card number must not repeat it. The
// path is only built when the value is refused (the common case allocates nothing).
Status CheckCard(const std::string& value, const Path& path, Rules rules) {
  if (rules == Rules::kStored || !ContainsCardNumber(value)) return Status::Ok();
  return CheckNoCardNumber(value, path.str());
}

enum class DecimalKind { kQty, kAmount, kTaxRate };

// Money, quantities and rates must arrive as strings: a JSON number has passed through
// someone's binary floating point, which is how tills lose cents.
Status TakeDecimal(Raw& raw, const Path& path, bool required, DecimalKind kind, int places,
                   std::string_view currency, int64_t* out, bool* present = nullptr) {
  if (present != nullptr) *present = false;
  if (IsNullish(raw)) {
    if (required) return Missing(path, path.Name() + " is required");
    return Status::Ok();
  }
  if (raw.kind != Kind::kString) return Invalid(path, path.Name() + " must be a decimal string");
  switch (ParseDecimalTo(raw.str, places, /*allow_negative=*/false, out)) {
    case DecimalError::kOk:
      break;
    case DecimalError::kSyntax:
      switch (kind) {
        case DecimalKind::kQty:
          return Invalid(path, path.Name() + " must be a decimal number such as \"2\" or \"0.5\"");
        case DecimalKind::kAmount:
          return Invalid(path, path.Name() + " must be a decimal amount such as \"3.50\"");
        case DecimalKind::kTaxRate:
          return Invalid(path, path.Name() + " must be a decimal fraction such as \"0.0825\"");
      }
      break;
    case DecimalError::kTooManyPlaces:
      if (kind == DecimalKind::kAmount) {
        return Invalid(path, path.Name() + " has more decimal places than " +
                                 std::string(currency) + " allows (" + std::to_string(places) +
                                 ")");
      }
      return Invalid(
          path, path.Name() + " must have at most " + std::to_string(places) + " decimal places");
    case DecimalError::kNegative:
      if (kind == DecimalKind::kQty) return Invalid(path, path.Name() + " must be greater than 0");
      return Invalid(path, path.Name() + " must not be negative");
    case DecimalError::kOverflow:
      *out = INT64_MAX;  // judged by the range checks below
      break;
  }
  switch (kind) {
    case DecimalKind::kQty:
      if (*out == 0) return Invalid(path, path.Name() + " must be greater than 0");
      if (*out > kMaxQtyMilli) return Invalid(path, path.Name() + " must be at most 1000000");
      break;
    case DecimalKind::kAmount:
      if (*out > kMaxAmount) {
        return Invalid(path,
                       "amount too large: " + path.Name() + " must be at most 10^15 minor units");
      }
      break;
    case DecimalKind::kTaxRate:
      if (*out > kMaxTaxRateMicro) return Invalid(path, path.Name() + " must be between 0 and 1");
      break;
  }
  if (present != nullptr) *present = true;
  return Status::Ok();
}

Status AmountTooLarge(const Path& path) {
  return Invalid(path, "amount too large: totals must be at most 10^15 minor units");
}

// A line's net and tax from its parsed fields (shared by Validate and the stored-row
// reader, so both compute the same amounts).
enum class LineMath { kOk, kTooLarge, kDiscountTooLarge };
LineMath ComputeLineAmounts(Line* line) {
  // qty <= 10^9 thousandths and price <= 10^15: the product fits easily in 128 bits.
  const Result<int64_t> gross =
      DivRoundHalfUp(static_cast<Int128>(line->qty_milli) * line->unit_price, 1000);
  if (!gross.ok() || *gross > kMaxAmount) return LineMath::kTooLarge;
  if (line->discount > *gross) return LineMath::kDiscountTooLarge;
  line->net = *gross - line->discount;
  // net <= 10^15 and rate <= 10^6: no overflow, and tax <= net.
  const Result<int64_t> tax =
      DivRoundHalfUp(static_cast<Int128>(line->net) * line->tax_rate_micro, 1'000'000);
  if (!tax.ok()) return LineMath::kTooLarge;
  line->tax = *tax;
  return LineMath::kOk;
}

Status ValidateLine(RawLine& raw, size_t index, const Currency& currency, Rules rules, Line* line) {
  const Path element{"lines", index, {}};
  if (raw.kind != Kind::kObject) return Invalid(element, "each line must be an object");
  const Path sku = element.Member("sku");
  RETURN_IF_ERROR(TakeString(raw.f[kSku], sku, true, &line->sku));
  RETURN_IF_ERROR(CheckCard(line->sku, sku, rules));
  RETURN_IF_ERROR(CheckText(line->sku, sku, 1, 64));
  const Path name = element.Member("name");
  RETURN_IF_ERROR(TakeString(raw.f[kName], name, false, &line->name));
  RETURN_IF_ERROR(CheckCard(line->name, name, rules));
  RETURN_IF_ERROR(CheckText(line->name, name, 0, 200));
  RETURN_IF_ERROR(TakeDecimal(raw.f[kQty], element.Member("qty"), true, DecimalKind::kQty, 3,
                              currency.code, &line->qty_milli));
  RETURN_IF_ERROR(TakeDecimal(raw.f[kUnitPrice], element.Member("unit_price"), true,
                              DecimalKind::kAmount, currency.minor_units, currency.code,
                              &line->unit_price));
  const Path discount = element.Member("discount");
  RETURN_IF_ERROR(TakeDecimal(raw.f[kDiscount], discount, false, DecimalKind::kAmount,
                              currency.minor_units, currency.code, &line->discount));
  RETURN_IF_ERROR(TakeDecimal(raw.f[kTaxRate], element.Member("tax_rate"), false,
                              DecimalKind::kTaxRate, 6, currency.code, &line->tax_rate_micro));

  switch (ComputeLineAmounts(line)) {
    case LineMath::kOk:
      return Status::Ok();
    case LineMath::kTooLarge:
      return AmountTooLarge(element);
    case LineMath::kDiscountTooLarge:
      break;
  }
  return Invalid(discount, "discount must not exceed the line amount (qty x unit_price)");
}

Status ValidatePayment(RawPayment& raw, size_t index, const Currency& currency, Rules rules,
                       Payment* payment) {
  const Path element{"payments", index, {}};
  if (raw.kind != Kind::kObject) return Invalid(element, "each payment must be an object");

  const Path method = element.Member("method");
  RETURN_IF_ERROR(TakeString(raw.f[kMethod], method, true, &payment->method));
  RETURN_IF_ERROR(CheckCard(payment->method, method, rules));
  if (payment->method.empty() || payment->method.size() > 32 ||
      payment->method.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") !=
          std::string::npos) {
    return Invalid(method, "method must be 1 to 32 characters of a-z, 0-9 or '_'");
  }
  const Path amount = element.Member("amount");
  RETURN_IF_ERROR(TakeDecimal(raw.f[kAmount], amount, true, DecimalKind::kAmount,
                              currency.minor_units, currency.code, &payment->amount));
  // Under 13 digits of minor units an amount cannot hold a PAN.
  if (rules == Rules::kRequest && payment->amount >= 1'000'000'000'000) {
    RETURN_IF_ERROR(CheckNoCardNumberInAmount(payment->amount, currency.minor_units, amount.str()));
  }

  const Path token = element.Member("card_token");
  bool token_present = false;
  RETURN_IF_ERROR(
      TakeString(raw.f[kCardToken], token, false, &payment->card_token, &token_present));
  RETURN_IF_ERROR(CheckCard(payment->card_token, token, rules));
  RETURN_IF_ERROR(CheckText(payment->card_token, token, 0, 128));
  if (payment->method == "card") {
    if (!token_present) return Missing(token, "card_token is required for card payments");
    if (payment->card_token.empty()) {
      return Invalid(token, "card_token must not be empty for card payments");
    }
  }

  const Path last4 = element.Member("last4");
  bool last4_present = false;
  RETURN_IF_ERROR(TakeString(raw.f[kLast4], last4, false, &payment->last4, &last4_present));
  RETURN_IF_ERROR(CheckCard(payment->last4, last4, rules));
  if (last4_present && (payment->last4.size() != 4 ||
                        payment->last4.find_first_not_of("0123456789") != std::string::npos)) {
    return Invalid(last4, "last4 must be exactly 4 digits");
  }

  const Path brand = element.Member("brand");
  RETURN_IF_ERROR(TakeString(raw.f[kBrand], brand, false, &payment->brand));
  RETURN_IF_ERROR(CheckCard(payment->brand, brand, rules));
  RETURN_IF_ERROR(CheckText(payment->brand, brand, 0, 32));

  const Path auth = element.Member("auth_code");
  RETURN_IF_ERROR(TakeString(raw.f[kAuthCode], auth, false, &payment->auth_code));
  RETURN_IF_ERROR(CheckCard(payment->auth_code, auth, rules));
  RETURN_IF_ERROR(CheckText(payment->auth_code, auth, 0, 64));

  Raw& offline = raw.f[kOffline];
  if (!IsNullish(offline)) {
    if (offline.kind != Kind::kBool) {
      return Invalid(element.Member("offline"), "offline must be true or false");
    }
    payment->offline = offline.boolean;
  }
  return Status::Ok();
}

Result<Sale> Validate(RawSale& raw, Rules rules) {
  if (raw.has_unknown) {
    return Status(ErrorCode::kInvalidField,
                  "unknown field: the hub accepts only the fields of the sale format, so that "
                  "nothing sent is silently dropped",
                  raw.unknown_field);
  }
  Sale sale;

  constexpr Path kIdPath = Root("id");
  RETURN_IF_ERROR(TakeString(raw.f[kId], kIdPath, true, &sale.id));
  RETURN_IF_ERROR(CheckCard(sale.id, kIdPath, rules));
  RETURN_IF_ERROR(CheckSaleId(sale.id, kIdPath, rules));

  constexpr Path kTerminalPath = Root("terminal_id");
  RETURN_IF_ERROR(TakeString(raw.f[kTerminalId], kTerminalPath, true, &sale.terminal_id));
  RETURN_IF_ERROR(CheckCard(sale.terminal_id, kTerminalPath, rules));
  if (sale.terminal_id.empty() || sale.terminal_id.size() > 32 ||
      !IdCharacters(sale.terminal_id, false)) {
    return Invalid(kTerminalPath,
                   "terminal_id must be 1 to 32 characters of A-Z, a-z, 0-9, '.', '_' or '-'");
  }

  constexpr Path kTypePath = Root("type");
  std::string type;
  bool type_present = false;
  RETURN_IF_ERROR(TakeString(raw.f[kType], kTypePath, false, &type, &type_present));
  if (!type_present || type == "sale") {
    sale.type = SaleType::kSale;
  } else if (type == "refund") {
    sale.type = SaleType::kRefund;
  } else if (type == "void") {
    sale.type = SaleType::kVoid;
  } else {
    return Invalid(kTypePath, "type must be \"sale\", \"refund\" or \"void\"");
  }

  constexpr Path kRefPath = Root("ref");
  if (sale.type == SaleType::kSale) {
    if (!IsNullish(raw.f[kRef])) {
      return Invalid(kRefPath, "ref is only allowed for a refund or void");
    }
  } else {
    RETURN_IF_ERROR(TakeString(raw.f[kRef], kRefPath, true, &sale.ref));
    RETURN_IF_ERROR(CheckCard(sale.ref, kRefPath, rules));
    RETURN_IF_ERROR(CheckSaleId(sale.ref, kRefPath, rules));
    if (sale.ref == sale.id) return Invalid(kRefPath, "ref must name another sale, not this one");
  }

  constexpr Path kCreatedPath = Root("created_at");
  std::string created_at;
  RETURN_IF_ERROR(TakeString(raw.f[kCreatedAt], kCreatedPath, true, &created_at));
  const Result<int64_t> created_ms = ParseRfc3339(created_at);
  if (!created_ms.ok()) {
    return Invalid(kCreatedPath,
                   "created_at must be an RFC 3339 timestamp such as \"2026-11-27T10:15:00Z\"");
  }
  sale.created_at_ms = *created_ms;

  constexpr Path kCurrencyPath = Root("currency");
  RETURN_IF_ERROR(TakeString(raw.f[kCurrency], kCurrencyPath, true, &sale.currency));
  const Currency* currency = FindCurrency(sale.currency);
  if (currency == nullptr) {
    return Invalid(kCurrencyPath, "currency must be a known ISO 4217 code such as \"USD\"");
  }

  constexpr Path kCashierPath = Root("cashier");
  RETURN_IF_ERROR(TakeString(raw.f[kCashier], kCashierPath, false, &sale.cashier));
  RETURN_IF_ERROR(CheckCard(sale.cashier, kCashierPath, rules));
  RETURN_IF_ERROR(CheckText(sale.cashier, kCashierPath, 0, 64));

  // Lines.
  constexpr Path kLinesPath = Root("lines");
  const Raw& lines = raw.f[kLines];
  if (IsNullish(lines)) return Missing(kLinesPath, "lines is required");
  if (lines.kind != Kind::kArray) return Invalid(kLinesPath, "lines must be an array");
  if (raw.line_count == 0) return Invalid(kLinesPath, "lines must contain at least one line");
  if (raw.line_count > kMaxLines) {
    return Invalid(kLinesPath, "lines must contain at most 1000 lines");
  }
  sale.lines.resize(raw.lines.size());
  for (size_t i = 0; i < raw.lines.size(); ++i) {
    Line& line = sale.lines[i];
    RETURN_IF_ERROR(ValidateLine(raw.lines[i], i, *currency, rules, &line));
    sale.subtotal += line.net;
    sale.tax_total += line.tax;
    // Each term is <= 10^15 and there are <= 1000 of them: the sums cannot overflow
    // before this check trips.
    if (sale.subtotal > kMaxAmount || sale.tax_total > kMaxAmount) {
      return AmountTooLarge(kLinesPath);
    }
  }
  sale.total = sale.subtotal + sale.tax_total;
  if (sale.total > kMaxAmount) return AmountTooLarge(kLinesPath);

  // Payments.
  constexpr Path kPaymentsPath = Root("payments");
  const Raw& payments = raw.f[kPayments];
  if (!IsNullish(payments)) {
    if (payments.kind != Kind::kArray) return Invalid(kPaymentsPath, "payments must be an array");
    if (raw.payment_count > kMaxPayments) {
      return Invalid(kPaymentsPath, "payments must contain at most 20 payments");
    }
    sale.payments.resize(raw.payments.size());
    for (size_t i = 0; i < raw.payments.size(); ++i) {
      RETURN_IF_ERROR(ValidatePayment(raw.payments[i], i, *currency, rules, &sale.payments[i]));
      sale.paid += sale.payments[i].amount;
      if (sale.paid > kMaxAmount) return AmountTooLarge(kPaymentsPath);
    }
  }

  // Declared total.
  int64_t declared = 0;
  bool declared_present = false;
  RETURN_IF_ERROR(TakeDecimal(raw.f[kTotal], Root("total"), false, DecimalKind::kAmount,
                              currency->minor_units, currency->code, &declared, &declared_present));
  if (declared_present) {
    sale.declared_total = declared;
    if (declared != sale.total) {
      return Status(ErrorCode::kTotalMismatch,
                    "total does not match the hub's computation (" +
                        FormatAmount(sale.total, currency->minor_units) + ")",
                    "total");
    }
  }

  if (sale.type == SaleType::kSale) {
    if (sale.paid < sale.total) {
      return Status(ErrorCode::kTotalMismatch,
                    "payments add up to " + FormatAmount(sale.paid, currency->minor_units) +
                        ", less than the total " + FormatAmount(sale.total, currency->minor_units),
                    "payments");
    }
    // Change is given only in cash: card (and every other non-cash) payments together
    // must not exceed the total.
    int64_t non_cash = 0;
    for (const Payment& p : sale.payments) {
      if (p.method != "cash") non_cash += p.amount;
    }
    if (rules == Rules::kRequest && non_cash > sale.total) {
      return Status(ErrorCode::kCardOverpayment,
                    "non-cash payments add up to " + FormatAmount(non_cash, currency->minor_units) +
                        ", more than the total " + FormatAmount(sale.total, currency->minor_units) +
                        "; change is given only from cash",
                    "payments");
    }
    sale.change = sale.paid - sale.total;
  } else {
    if (!sale.payments.empty() && sale.paid != sale.total) {
      return Status(ErrorCode::kTotalMismatch,
                    "payments of a " + std::string(SaleTypeName(sale.type)) +
                        " must add up to its total " +
                        FormatAmount(sale.total, currency->minor_units),
                    "payments");
    }
    sale.change = 0;
  }
  return sale;
}

// ---------------------------------------------------------------------------------------
// Output: a small JSON writer with one fixed escaping, so that the canonical bytes never
// depend on a library's formatting choices.
// ---------------------------------------------------------------------------------------

class Writer {
 public:
  explicit Writer(size_t reserve) { out_.reserve(reserve); }

  std::string Take() { return std::move(out_); }

  // ,"name": (the comma only when something precedes in the same container)
  void Key(std::string_view name) {
    Separator();
    out_.push_back('"');
    out_.append(name);  // keys are ours: plain ASCII
    out_.append("\":");
  }

  void String(std::string_view name, std::string_view value) {
    Key(name);
    Escaped(value);
    need_comma_ = true;
  }
  void Decimal(std::string_view name, int64_t scaled, int places, bool trim) {
    Key(name);
    out_.push_back('"');
    AppendDecimal(&out_, scaled, places, trim);
    out_.push_back('"');
    need_comma_ = true;
  }
  void Int(std::string_view name, int64_t value) {
    Key(name);
    char buf[24];
    const auto res = std::to_chars(buf, buf + sizeof(buf), value);
    out_.append(buf, res.ptr);
    need_comma_ = true;
  }
  void Bool(std::string_view name, bool value) {
    Key(name);
    out_.append(value ? "true" : "false");
    need_comma_ = true;
  }

  void BeginObject() {
    Separator();
    out_.push_back('{');
    need_comma_ = false;
  }
  void BeginObject(std::string_view name) {
    Key(name);
    out_.push_back('{');
    need_comma_ = false;
  }
  void EndObject() {
    out_.push_back('}');
    need_comma_ = true;
  }
  void BeginArray(std::string_view name) {
    Key(name);
    out_.push_back('[');
    need_comma_ = false;
  }
  void EndArray() {
    out_.push_back(']');
    need_comma_ = true;
  }

 private:
  void Separator() {
    if (need_comma_) out_.push_back(',');
    need_comma_ = false;
  }

  // Escapes '"', '\\' and control characters (\b \f \n \r \t, else \u00xx lower-case);
  // everything else, including non-ASCII UTF-8, is copied as is.
  void Escaped(std::string_view s) {
    out_.push_back('"');
    size_t run = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(s.data() + run, i - run);
      run = i + 1;
      switch (c) {
        case '"':
          out_.append("\\\"");
          break;
        case '\\':
          out_.append("\\\\");
          break;
        case '\b':
          out_.append("\\b");
          break;
        case '\f':
          out_.append("\\f");
          break;
        case '\n':
          out_.append("\\n");
          break;
        case '\r':
          out_.append("\\r");
          break;
        case '\t':
          out_.append("\\t");
          break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out_.append(esc, 6);
        }
      }
    }
    out_.append(s.data() + run, s.size() - run);
    out_.push_back('"');
  }

  std::string out_;
  bool need_comma_ = false;
};

int MinorUnits(const Sale& sale) {
  const Currency* currency = FindCurrency(sale.currency);
  // A Sale comes from DecodeSale, so the currency is known; 2 keeps a hand-built Sale
  // with a bad code printable rather than crashing.
  return currency != nullptr ? currency->minor_units : 2;
}

void WritePayments(Writer& w, const Sale& sale, int minor, bool always_offline) {
  w.BeginArray("payments");
  for (const Payment& p : sale.payments) {
    w.BeginObject();
    w.String("method", p.method);
    w.Decimal("amount", p.amount, minor, false);
    if (!p.card_token.empty()) w.String("card_token", p.card_token);
    if (!p.last4.empty()) w.String("last4", p.last4);
    if (!p.brand.empty()) w.String("brand", p.brand);
    if (!p.auth_code.empty()) w.String("auth_code", p.auth_code);
    if (p.offline || always_offline) w.Bool("offline", p.offline);
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

namespace {

Result<Sale> Decode(std::string_view json, Rules rules) {
  RawSale raw;
  SaxHandler handler(&raw);
  try {
    Json::sax_parse(json.begin(), json.end(), &handler);
  } catch (const std::exception&) {
    // sax_parse reports syntax errors through the handler; anything thrown is resource
    // exhaustion, reported the same way rather than crossing the module boundary.
    return Status(ErrorCode::kInvalidJson, "request body could not be parsed");
  }
  switch (handler.failure()) {
    case SaxHandler::Failure::kNone:
      break;
    case SaxHandler::Failure::kSyntax:
      return Status(ErrorCode::kInvalidJson, "request body is not valid JSON (error at byte " +
                                                 std::to_string(handler.error_position()) + ")");
    case SaxHandler::Failure::kDuplicateKey:
      return Status(ErrorCode::kInvalidJson,
                    "request body has a duplicate key in an object, which JSON readers "
                    "resolve differently");
    case SaxHandler::Failure::kNotObject:
      return Status(ErrorCode::kInvalidJson, "request body must be a JSON object");
  }
  return Validate(raw, rules);
}

}  // namespace

Result<Sale> DecodeSale(std::string_view json) { return Decode(json, Rules::kRequest); }

std::string CanonicalSale(const Sale& sale) {
  const int minor = MinorUnits(sale);
  Writer w(256 + sale.lines.size() * 112 + sale.payments.size() * 96);
  w.BeginObject();
  w.String("id", sale.id);
  w.String("terminal_id", sale.terminal_id);
  w.String("type", SaleTypeName(sale.type));
  if (!sale.ref.empty()) w.String("ref", sale.ref);
  w.String("created_at", FormatRfc3339(sale.created_at_ms));
  w.String("currency", sale.currency);
  if (!sale.cashier.empty()) w.String("cashier", sale.cashier);
  w.BeginArray("lines");
  for (const Line& line : sale.lines) {
    w.BeginObject();
    w.String("sku", line.sku);
    if (!line.name.empty()) w.String("name", line.name);
    w.Decimal("qty", line.qty_milli, 3, true);
    w.Decimal("unit_price", line.unit_price, minor, false);
    w.Decimal("discount", line.discount, minor, false);
    w.Decimal("tax_rate", line.tax_rate_micro, 6, true);
    w.EndObject();
  }
  w.EndArray();
  WritePayments(w, sale, minor, /*always_offline=*/false);
  w.EndObject();
  return w.Take();
}

Result<Sale> DecodeCanonical(std::string_view canonical) {
  Result<Sale> sale = Decode(canonical, Rules::kStored);
  if (!sale.ok()) {
    // Stored bytes that no longer decode are corruption (or a rule tightened without a
    // migration), never the client's fault.
    return Status(ErrorCode::kInternal, "stored sale does not decode: " + sale.status().ToString());
  }
  return sale;
}

namespace {

// Reads exactly the layout CanonicalSale writes (docs/JOURNAL.md): keys in their fixed
// order, no whitespace, strings escaped as Writer::Escaped does, decimals in canonical
// form. Every Read* returns false at the first byte it does not expect.
class CanonicalReader {
 public:
  explicit CanonicalReader(std::string_view text) : s_(text) {}

  bool AtEnd() const { return pos_ == s_.size(); }

  bool Lit(std::string_view lit) {
    if (s_.compare(pos_, lit.size(), lit) != 0) return false;
    pos_ += lit.size();
    return true;
  }

  // ,"name": or {"name": etc. are matched with Lit; this reads the value of a string.
  bool ReadString(std::string* out) {
    if (pos_ >= s_.size() || s_[pos_] != '"') return false;
    ++pos_;
    out->clear();
    size_t run = pos_;
    while (pos_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        out->append(s_.data() + run, pos_ - run);
        ++pos_;
        return true;
      }
      if (c < 0x20) return false;
      if (c != '\\') {
        ++pos_;
        continue;
      }
      out->append(s_.data() + run, pos_ - run);
      if (pos_ + 1 >= s_.size()) return false;
      switch (s_[pos_ + 1]) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          // Writer escapes other control characters as \u00xx (lower-case hex).
          if (pos_ + 6 > s_.size() || s_[pos_ + 2] != '0' || s_[pos_ + 3] != '0') return false;
          const int hi = Hex(s_[pos_ + 4]);
          const int lo = Hex(s_[pos_ + 5]);
          if (hi < 0 || lo < 0 || hi > 1) return false;
          out->push_back(static_cast<char>(hi * 16 + lo));
          pos_ += 4;
          break;
        }
        default:
          return false;
      }
      pos_ += 2;
      run = pos_;
    }
    return false;
  }

  bool ReadDecimal(int places, int64_t* out) {
    if (pos_ >= s_.size() || s_[pos_] != '"') return false;
    const size_t end = s_.find('"', pos_ + 1);
    if (end == std::string_view::npos) return false;
    const std::string_view text = s_.substr(pos_ + 1, end - pos_ - 1);
    if (ParseDecimalTo(text, places, /*allow_negative=*/false, out) != DecimalError::kOk) {
      return false;
    }
    pos_ = end + 1;
    return true;
  }

 private:
  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

bool TryDecodeCanonicalLayout(std::string_view canonical, Sale* out) {
  CanonicalReader r(canonical);
  Sale sale;
  std::string text;
  if (!r.Lit("{\"id\":") || !r.ReadString(&sale.id)) return false;
  if (!r.Lit(",\"terminal_id\":") || !r.ReadString(&sale.terminal_id)) return false;
  if (!r.Lit(",\"type\":") || !r.ReadString(&text)) return false;
  if (text == "sale") {
    sale.type = SaleType::kSale;
  } else if (text == "refund") {
    sale.type = SaleType::kRefund;
  } else if (text == "void") {
    sale.type = SaleType::kVoid;
  } else {
    return false;
  }
  if (r.Lit(",\"ref\":")) {
    if (sale.type == SaleType::kSale || !r.ReadString(&sale.ref) || sale.ref.empty()) {
      return false;
    }
  } else if (sale.type != SaleType::kSale) {
    return false;
  }
  if (!r.Lit(",\"created_at\":") || !r.ReadString(&text)) return false;
  const Result<int64_t> created = ParseRfc3339(text);
  if (!created.ok()) return false;
  sale.created_at_ms = *created;
  if (!r.Lit(",\"currency\":") || !r.ReadString(&sale.currency)) return false;
  const Currency* currency = FindCurrency(sale.currency);
  if (currency == nullptr) return false;
  const int minor = currency->minor_units;
  if (r.Lit(",\"cashier\":") && (!r.ReadString(&sale.cashier) || sale.cashier.empty())) {
    return false;
  }
  if (!r.Lit(",\"lines\":[")) return false;
  do {
    Line& line = sale.lines.emplace_back();
    if (!r.Lit("{\"sku\":") || !r.ReadString(&line.sku)) return false;
    if (r.Lit(",\"name\":") && (!r.ReadString(&line.name) || line.name.empty())) return false;
    if (!r.Lit(",\"qty\":") || !r.ReadDecimal(3, &line.qty_milli) || line.qty_milli <= 0) {
      return false;
    }
    if (!r.Lit(",\"unit_price\":") || !r.ReadDecimal(minor, &line.unit_price)) return false;
    if (!r.Lit(",\"discount\":") || !r.ReadDecimal(minor, &line.discount)) return false;
    if (!r.Lit(",\"tax_rate\":") || !r.ReadDecimal(6, &line.tax_rate_micro)) return false;
    if (!r.Lit("}")) return false;
    if (ComputeLineAmounts(&line) != LineMath::kOk) return false;
    sale.subtotal += line.net;
    sale.tax_total += line.tax;
    if (sale.subtotal > kMaxAmount || sale.tax_total > kMaxAmount) return false;
  } while (r.Lit(","));
  sale.total = sale.subtotal + sale.tax_total;
  if (sale.total > kMaxAmount || sale.lines.size() > kMaxLines) return false;
  if (!r.Lit("],\"payments\":[")) return false;
  if (!r.Lit("]")) {
    do {
      Payment& p = sale.payments.emplace_back();
      if (!r.Lit("{\"method\":") || !r.ReadString(&p.method) || p.method.empty()) return false;
      if (!r.Lit(",\"amount\":") || !r.ReadDecimal(minor, &p.amount)) return false;
      if (r.Lit(",\"card_token\":") && (!r.ReadString(&p.card_token) || p.card_token.empty())) {
        return false;
      }
      if (r.Lit(",\"last4\":") && (!r.ReadString(&p.last4) || p.last4.empty())) return false;
      if (r.Lit(",\"brand\":") && (!r.ReadString(&p.brand) || p.brand.empty())) return false;
      if (r.Lit(",\"auth_code\":") && (!r.ReadString(&p.auth_code) || p.auth_code.empty())) {
        return false;
      }
      if (r.Lit(",\"offline\":true")) p.offline = true;
      if (!r.Lit("}")) return false;
      sale.paid += p.amount;
      if (sale.paid > kMaxAmount) return false;
    } while (r.Lit(","));
    if (!r.Lit("]") || sale.payments.size() > kMaxPayments) return false;
  }
  if (!r.Lit("}") || !r.AtEnd()) return false;
  if (sale.type == SaleType::kSale) {
    if (sale.paid < sale.total) return false;
    sale.change = sale.paid - sale.total;
  } else {
    if (!sale.payments.empty() && sale.paid != sale.total) return false;
    sale.change = 0;
  }
  *out = std::move(sale);
  return true;
}

Result<Sale> DecodeStoredCanonical(std::string_view canonical) {
  Sale sale;
  if (TryDecodeCanonicalLayout(canonical, &sale)) return sale;
  return DecodeCanonical(canonical);
}

std::string StoredSaleJson(const StoredSale& stored) {
  const Sale& sale = stored.sale;
  const int minor = MinorUnits(sale);
  Writer w(512 + sale.lines.size() * 160 + sale.payments.size() * 112);
  w.BeginObject();
  w.String("id", sale.id);
  w.Int("seq", stored.seq);
  w.String("receipt_no", stored.receipt_no);
  w.String("terminal_id", sale.terminal_id);
  w.String("type", SaleTypeName(sale.type));
  if (!sale.ref.empty()) w.String("ref", sale.ref);
  w.String("created_at", FormatRfc3339(sale.created_at_ms));
  w.String("received_at", FormatRfc3339(stored.received_at_ms));
  w.Bool("clock_skew", stored.clock_skew);
  w.String("currency", sale.currency);
  if (!sale.cashier.empty()) w.String("cashier", sale.cashier);
  w.BeginArray("lines");
  for (const Line& line : sale.lines) {
    w.BeginObject();
    w.String("sku", line.sku);
    w.String("name", line.name);
    w.Decimal("qty", line.qty_milli, 3, true);
    w.Decimal("unit_price", line.unit_price, minor, false);
    w.Decimal("discount", line.discount, minor, false);
    w.Decimal("tax_rate", line.tax_rate_micro, 6, true);
    w.Decimal("net", line.net, minor, false);
    w.Decimal("tax", line.tax, minor, false);
    w.EndObject();
  }
  w.EndArray();
  WritePayments(w, sale, minor, /*always_offline=*/true);
  w.Decimal("subtotal", sale.subtotal, minor, false);
  w.Decimal("tax", sale.tax_total, minor, false);
  w.Decimal("total", sale.total, minor, false);
  w.Decimal("paid", sale.paid, minor, false);
  w.Decimal("change", sale.change, minor, false);
  w.String("hash", ToHex(stored.hash));
  w.String("prev_hash", ToHex(stored.prev_hash));
  w.Bool("uploaded", stored.uploaded);
  w.EndObject();
  return w.Take();
}

}  // namespace machub::core
