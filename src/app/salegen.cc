#include "app/salegen.h"

#include <charconv>
#include <iterator>

namespace machub::app {
namespace {

uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

struct Product {
  const char* sku;
  const char* name_json;  // already escaped for a JSON string
  int64_t unit_price;     // minor units
  const char* tax_rate;   // as sent
  int64_t tax_rate_micro;
  bool weighed;  // quantity in kg with 3 decimals
};

// Tax rates include odd ones (8.25 %, 5.125 %) so that per-line rounding matters.
constexpr Product kProducts[] = {
    {"0001", "Coffee", 350, "0.0825", 82500, false},
    {"0002", "Espresso \\\"doppio\\\"", 295, "0.0825", 82500, false},
    {"0003", "Croissant", 275, "0.07", 70000, false},
    {"0004", "Cr\u00e8me br\u00fbl\u00e9e", 625, "0.0825", 82500, false},
    {"0005", "Bananas", 129, "0", 0, true},
    {"0006", "Cheddar cheese", 1899, "0.05125", 51250, true},
    {"0007", "Sparkling water 6x1L", 549, "0.2", 200000, false},
    {"0008", "Paper bag", 10, "0.0825", 82500, false},
    {"0009", "Olive oil 1L \\\\ extra virgin", 1249, "0.07", 70000, false},
    {"0010", "Tomatoes", 349, "0.05125", 51250, true},
    {"0011", "Gift card", 2500, "0", 0, false},
    {"0012", "Sandwich", 799, "0.0825", 82500, false},
};
constexpr int kProductCount = static_cast<int>(std::size(kProducts));

constexpr const char* kBrands[] = {"visa", "mastercard", "amex", "discover"};

// round_half_up(a / b) for a >= 0, b > 0.
int64_t DivHalfUp(int64_t a, int64_t b) { return (a + b / 2) / b; }

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, res.ptr);
}

// `scaled` >= 0 with `places` decimals: 350, 2 -> "3.50"; 7, 0 -> "7".
void AppendFixed(std::string* out, int64_t scaled, int places) {
  if (places == 0) {
    AppendInt(out, scaled);
    return;
  }
  int64_t pow10 = 1;
  for (int i = 0; i < places; ++i) pow10 *= 10;
  AppendInt(out, scaled / pow10);
  out->push_back('.');
  int64_t frac = scaled % pow10;
  char buf[8];
  for (int i = places - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  out->append(buf, static_cast<size_t>(places));
}

}  // namespace

Prng::Prng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : s_) s = SplitMix64(&x);
}

uint64_t Prng::Next() {
  uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

uint64_t Prng::Below(uint64_t n) {
  // Modulo bias (n / 2^64) is irrelevant for load generation.
  return Next() % n;
}

double Prng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

SaleGenerator::SaleGenerator(std::string terminal_id, std::string currency, int minor_units,
                             uint64_t seed)
    : terminal_id_(std::move(terminal_id)),
      currency_(std::move(currency)),
      minor_units_(minor_units),
      unit_(1),
      prng_(seed) {
  for (int i = 0; i < minor_units_; ++i) unit_ *= 10;
}

std::string SaleGenerator::NextId() {
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t a = prng_.Next();
  uint64_t b = prng_.Next();
  // Version 4 and the RFC 4122 variant, like a real UUIDv4.
  a = (a & ~0xf000ULL) | 0x4000ULL;
  b = (b & ~(0xcULL << 60)) | (0x8ULL << 60);
  std::string id(36, '-');
  int pos = 0;
  auto put = [&](uint64_t v, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      id[pos++] = kHex[(v >> (i * 4)) & 0xf];
    }
  };
  put(a, 16);
  put(b, 16);
  return id;
}

void SaleGenerator::AppendAmount(std::string* body, int64_t minor) {
  AppendFixed(body, minor, minor_units_);
}

void SaleGenerator::AppendHeader(std::string* body, std::string_view id, std::string_view type,
                                 std::string_view ref, std::string_view created_at) {
  body->append("{\"id\":\"").append(id);
  body->append("\",\"terminal_id\":\"").append(terminal_id_);
  body->append("\",\"type\":\"").append(type).append("\"");
  if (!ref.empty()) body->append(",\"ref\":\"").append(ref).append("\"");
  body->append(",\"created_at\":\"").append(created_at);
  body->append("\",\"currency\":\"").append(currency_).append("\"");
  if (prng_.Below(4) != 0) {
    body->append(",\"cashier\":\"c-");
    AppendInt(body, static_cast<int64_t>(prng_.Below(20) + 1));
    body->append("\"");
  }
  body->append(",\"lines\":[");
}

SaleGenerator::LineResult SaleGenerator::AppendLine(std::string* body, int product,
                                                    int64_t qty_milli, bool with_discount) {
  const Product& p = kProducts[product];
  int64_t gross = DivHalfUp(qty_milli * p.unit_price, 1000);
  int64_t discount = with_discount ? gross / 10 : 0;
  LineResult r;
  r.net = gross - discount;
  r.tax = DivHalfUp(r.net * p.tax_rate_micro, 1'000'000);

  body->append("{\"sku\":\"").append(p.sku);
  body->append("\",\"name\":\"").append(p.name_json);
  body->append("\",\"qty\":\"");
  if (p.weighed) {
    AppendFixed(body, qty_milli, 3);
  } else {
    AppendInt(body, qty_milli / 1000);
  }
  body->append("\",\"unit_price\":\"");
  AppendAmount(body, p.unit_price);
  if (with_discount) {
    body->append("\",\"discount\":\"");
    AppendAmount(body, discount);
  }
  body->append("\",\"tax_rate\":\"").append(p.tax_rate).append("\"}");
  return r;
}

void SaleGenerator::NextSale(std::string_view created_at, std::string* body, GeneratedSale* info) {
  static constexpr char kHex[] = "0123456789abcdef";
  body->clear();
  *info = GeneratedSale{};
  info->id = NextId();
  AppendHeader(body, info->id, "sale", "", created_at);

  int lines = 1 + static_cast<int>(prng_.Below(10));
  int64_t total = 0;
  for (int i = 0; i < lines; ++i) {
    int product = static_cast<int>(prng_.Below(kProductCount));
    int64_t qty_milli =
        kProducts[product].weighed
            ? 50 + static_cast<int64_t>(prng_.Below(2450))  // 0.050 .. 2.499 kg
            : 1000 * (1 + static_cast<int64_t>(prng_.Below(prng_.Below(4) == 0 ? 6 : 2)));
    bool discount = prng_.Below(10) == 0;
    if (i > 0) body->push_back(',');
    LineResult r = AppendLine(body, product, qty_milli, discount);
    total += r.net + r.tax;
    if (i == 0) {
      info->first_product = product;
      info->first_qty_milli = qty_milli;
      info->first_discount = discount;
    }
  }
  body->append("],\"payments\":[");

  uint64_t tender = prng_.Below(20);
  int64_t paid = 0;
  auto append_card = [&](int64_t amount) {
    body->append("{\"method\":\"card\",\"amount\":\"");
    AppendAmount(body, amount);
    // A letter every fourth character keeps any digit run far below a card number's 13.
    body->append("\",\"card_token\":\"tok_");
    for (int i = 0; i < 24; ++i) {
      body->push_back(i % 4 == 0 ? static_cast<char>('a' + prng_.Below(6)) : kHex[prng_.Below(16)]);
    }
    body->append("\",\"last4\":\"");
    for (int i = 0; i < 4; ++i) body->push_back(static_cast<char>('0' + prng_.Below(10)));
    body->append("\",\"brand\":\"").append(kBrands[prng_.Below(std::size(kBrands))]);
    body->append("\",\"auth_code\":\"");
    body->push_back(static_cast<char>('A' + prng_.Below(26)));
    for (int i = 0; i < 5; ++i) body->push_back(static_cast<char>('0' + prng_.Below(10)));
    body->append("\"");
    if (prng_.Below(10) == 0) body->append(",\"offline\":true");
    body->append("}");
    paid += amount;
  };
  auto append_cash = [&](int64_t amount) {
    body->append("{\"method\":\"cash\",\"amount\":\"");
    AppendAmount(body, amount);
    body->append("\"}");
    paid += amount;
  };
  if (tender < 11) {
    append_card(total);
  } else if (tender < 19 || total <= 5 * unit_) {
    // Cash is handed over in whole units (sometimes a 20 note), so change is due.
    int64_t step = prng_.Below(4) == 0 ? 20 * unit_ : unit_;
    append_cash((total / step + 1) * step);
  } else {
    // Split tender: a fixed cash part, the rest on a card.
    append_cash(5 * unit_);
    body->push_back(',');
    append_card(total - 5 * unit_);
  }
  body->append("]");
  if (prng_.Below(2) == 0) {
    body->append(",\"total\":\"");
    AppendAmount(body, total);
    body->append("\"");
    info->declared_total = true;
  }
  body->append("}");

  info->lines = lines;
  info->total = total;
  info->paid = paid;
  info->change = paid - total;
}

void SaleGenerator::NextRefund(const GeneratedSale& original, std::string_view created_at,
                               std::string* body, GeneratedSale* info) {
  body->clear();
  *info = GeneratedSale{};
  info->id = NextId();
  info->refund = true;
  AppendHeader(body, info->id, "refund", original.id, created_at);
  LineResult r =
      AppendLine(body, original.first_product, original.first_qty_milli, original.first_discount);
  int64_t total = r.net + r.tax;
  body->append("],\"payments\":[{\"method\":\"cash\",\"amount\":\"");
  AppendAmount(body, total);
  body->append("\"}],\"total\":\"");
  AppendAmount(body, total);
  body->append("\"}");
  info->declared_total = true;
  info->lines = 1;
  info->total = total;
  info->paid = total;
  info->change = 0;
  info->first_product = original.first_product;
  info->first_qty_milli = original.first_qty_milli;
  info->first_discount = original.first_discount;
}

}  // namespace machub::app
