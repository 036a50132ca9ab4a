#pragma once
// Internals shared by the sale codec's files (sale_codec.h is the contract):
//   sale_decode.cc         stage 1, the SAX pass that sorts a body into fixed slots
//   sale_validate.cc       stage 2, validation in a fixed order, computing the amounts
//   sale_write.cc          the canonical writer and the stored-row JSON
//   sale_stored_reader.cc  the fast reader of the exact canonical layout
// Not for use outside src/core.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/currency.h"
#include "core/json_writer.h"
#include "core/money.h"
#include "core/sale.h"
#include "core/status.h"

namespace machub::core::sale_internal {

inline constexpr size_t kMaxLines = 1000;
inline constexpr size_t kMaxPayments = 20;
inline constexpr int64_t kMaxQtyMilli = 1'000'000'000;        // 1,000,000 units
inline constexpr int64_t kMaxTaxRateMicro = 1'000'000;        // 100 %
inline constexpr int64_t kMaxAmount = 1'000'000'000'000'000;  // 10^15 minor units, any sum

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
inline constexpr std::string_view kRootNames[kRootFieldCount] = {
    "id",       "terminal_id", "type",  "ref",      "created_at",
    "currency", "cashier",     "lines", "payments", "total"};

enum LineField : int { kSku, kName, kQty, kUnitPrice, kDiscount, kTaxRate, kLineFieldCount };
inline constexpr std::string_view kLineNames[kLineFieldCount] = {
    "sku", "name", "qty", "unit_price", "discount", "tax_rate"};

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
inline constexpr std::string_view kPaymentNames[kPaymentFieldCount] = {
    "method", "amount", "card_token", "last4", "brand", "auth_code", "offline"};

struct RawLine {  // NOLINT(bugprone-reserved-identifier): clang-tidy 14 names the implicit copy
                  // loop
  Kind kind = Kind::kAbsent;  // of the array element; kObject when it is a line
  Raw f[kLineFieldCount];
};

struct RawPayment {  // NOLINT(bugprone-reserved-identifier): as above
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

// Request-only rules (card numbers, id first character, card overpayment) are skipped for
// bytes the journal already stored: a row written before a rule was added must stay
// readable, and the stored-row reader (TryDecodeCanonicalLayout) skips them too.
enum class Rules { kRequest, kStored };

// Stage 1 then stage 2: the body's bytes to a validated Sale (kInvalidJson for a body that
// is not one JSON object with unique keys, the validation errors of sale_codec.h).
Result<Sale> Decode(std::string_view json, Rules rules);

// A line's net and tax from its parsed fields (shared by Validate and the stored-row
// reader, so both compute the same amounts).
enum class LineMath { kOk, kTooLarge, kDiscountTooLarge };
LineMath ComputeLineAmounts(Line* line);

// Stage 2 alone (sale_validate.cc).
Result<Sale> Validate(RawSale& raw, Rules rules);

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

  void Escaped(std::string_view s) { AppendJsonString(&out_, s); }

  std::string out_;
  bool need_comma_ = false;
};

inline int MinorUnits(const Sale& sale) {
  const Currency* currency = FindCurrency(sale.currency);
  // A Sale comes from DecodeSale, so the currency is known; 2 keeps a hand-built Sale
  // with a bad code printable rather than crashing.
  return currency != nullptr ? currency->minor_units : 2;
}

inline void WritePayments(Writer& w, const Sale& sale, int minor, bool always_offline) {
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

}  // namespace machub::core::sale_internal
