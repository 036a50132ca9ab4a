// The fast reader of the exact canonical layout CanonicalSale writes (stored rows), with
// the full decoder as its fallback.
#include <utility>

#include "core/sale_codec.h"
#include "core/sale_codec_internal.h"
#include "core/time_format.h"

namespace machub::core {

using namespace sale_internal;  // NOLINT(google-build-using-namespace): the codec's own parts

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

}  // namespace machub::core
