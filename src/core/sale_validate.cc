// Stage 2 of the sale codec: validation in a fixed order, computing the amounts.
#include <utility>

#include "core/card_number.h"
#include "core/sale_codec.h"
#include "core/sale_codec_internal.h"
#include "core/text.h"
#include "core/time_format.h"

namespace machub::core::sale_internal {
namespace {

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

}  // namespace

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

}  // namespace machub::core::sale_internal
