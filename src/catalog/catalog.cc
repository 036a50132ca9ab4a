#include "catalog/catalog.h"

#include <algorithm>
#include <exception>
#include <nlohmann/json.hpp>
#include <utility>

#include "catalog/format_checks.h"
#include "core/currency.h"
#include "core/json_writer.h"
#include "core/money.h"
#include "core/sha256.h"
#include "core/text.h"

namespace machub::catalog {
namespace {

using internal::CheckText;
using internal::Invalid;
using internal::Missing;

constexpr int64_t kMaxVersionChars = 128;
constexpr int64_t kMaxSkuChars = 64;
constexpr int64_t kMaxNameChars = 200;
// The same ceiling as a sale's unit_price (core/sale_validate.cc): any catalog price can be
// sold without tripping the sale's own limit.
constexpr int64_t kMaxPriceMinor = 1'000'000'000'000'000;
constexpr int64_t kMaxTaxRateMicro = 1'000'000;
constexpr int kTaxRatePlaces = 6;

// Code points of `s`, or -1 for a control character, -2 for invalid UTF-8. The JSON
// reader already refuses invalid UTF-8; rows read back from catalog.db get no such check,
// and a served body must be valid JSON whatever the file holds.
int64_t TextChars(std::string_view s) {
  int64_t n = 0;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7F) return -1;
      ++i;
      ++n;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((c >> 5) == 0x6) {
      len = 2, cp = c & 0x1Fu, min = 0x80;
    } else if ((c >> 4) == 0xE) {
      len = 3, cp = c & 0x0Fu, min = 0x800;
    } else if ((c >> 3) == 0x1E) {
      len = 4, cp = c & 0x07u, min = 0x10000;
    } else {
      return -2;
    }
    if (i + len > s.size()) return -2;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return -2;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -2;
    i += len;
    ++n;
  }
  return n;
}

// Paths such as "version" and "products[12].price" (core/text.h).
using Path = core::FieldPath;

Path ProductPath(size_t index, std::string_view member = {}) {
  return Path("products", index, member);
}

Status CheckPriceRange(int64_t price_minor, const Path& path) {
  if (price_minor < 0) return Invalid(path, "must not be negative");
  if (price_minor > kMaxPriceMinor) return Invalid(path, "is too large");
  return Status::Ok();
}

Status CheckTaxRange(int64_t tax_rate_micro, const Path& path) {
  if (tax_rate_micro < 0 || tax_rate_micro > kMaxTaxRateMicro) {
    return Invalid(path, "must be between 0 and 1");
  }
  return Status::Ok();
}

Status ParsePrice(std::string_view text, const core::Currency& currency, const Path& path,
                  int64_t* out) {
  switch (core::ParseDecimalTo(text, currency.minor_units, false, out)) {
    case core::DecimalError::kOk:
      return CheckPriceRange(*out, path);
    case core::DecimalError::kSyntax:
      return Invalid(path, "must be a decimal string such as \"3.50\"");
    case core::DecimalError::kTooManyPlaces:
      return Invalid(path, "has more decimals than " + std::string(currency.code) + " allows (" +
                               std::to_string(currency.minor_units) + ")");
    case core::DecimalError::kNegative:
      return Invalid(path, "must not be negative");
    case core::DecimalError::kOverflow:
      return Invalid(path, "is too large");
  }
  return Invalid(path, "is not a valid price");
}

Status ParseTaxRate(std::string_view text, const Path& path, int64_t* out) {
  switch (core::ParseDecimalTo(text, kTaxRatePlaces, false, out)) {
    case core::DecimalError::kOk:
      return CheckTaxRange(*out, path);
    case core::DecimalError::kSyntax:
      return Invalid(path, "must be a decimal string such as \"0.0825\"");
    case core::DecimalError::kTooManyPlaces:
      return Invalid(path, "must have at most 6 decimals");
    case core::DecimalError::kNegative:
    case core::DecimalError::kOverflow:
      return Invalid(path, "must be between 0 and 1");
  }
  return Invalid(path, "is not a valid tax rate");
}

Status CheckCatalogHeader(const std::string& version, const std::string& currency,
                          const core::Currency** found) {
  RETURN_IF_ERROR(CheckText(version, "version", 1, kMaxVersionChars));
  *found = core::FindCurrency(currency);
  if (*found == nullptr) return Invalid("currency", "is not a known ISO 4217 currency code");
  return Status::Ok();
}

// A product as read, before its decimal strings can be judged: the currency (and so the
// number of minor digits) may come after the products in the document.
struct RawProduct {
  std::string sku, name, price, tax_rate;
  bool has_sku = false, has_name = false, has_price = false, has_tax_rate = false;
  bool active = true;
};

// Streams the document instead of building a DOM: a DOM of 200k products costs several
// hundred bytes per product on top of the result, which a small hub can do without.
// Known members are taken, unknown ones (of any shape) skipped; the first error stops
// the parse.
class CatalogSax {
 public:
  using json = nlohmann::json;

  bool null() { return Value(Kind::kOther, nullptr, false); }
  bool boolean(bool v) { return Value(Kind::kBool, nullptr, v); }
  bool number_integer(json::number_integer_t) { return Value(Kind::kOther, nullptr, false); }
  bool number_unsigned(json::number_unsigned_t) { return Value(Kind::kOther, nullptr, false); }
  bool number_float(json::number_float_t, const json::string_t&) {
    return Value(Kind::kOther, nullptr, false);
  }
  bool string(json::string_t& v) { return Value(Kind::kString, &v, false); }
  bool binary(json::binary_t&) { return Value(Kind::kOther, nullptr, false); }
  bool start_object(std::size_t) { return Value(Kind::kObject, nullptr, false); }
  bool start_array(std::size_t) { return Value(Kind::kArray, nullptr, false); }
  bool end_object() {
    if (skip_ > 0) {
      --skip_;
    } else if (where_ == Where::kProduct) {
      where_ = Where::kProducts;
    } else if (where_ == Where::kTop) {
      where_ = Where::kDone;
    }
    return true;
  }
  bool end_array() {
    if (skip_ > 0) {
      --skip_;
    } else if (where_ == Where::kProducts) {
      where_ = Where::kTop;
    }
    return true;
  }
  bool key(json::string_t& k) {
    if (skip_ == 0) key_ = std::move(k);
    return true;
  }
  // The lexer's last token is not quoted back: it may be a whole (huge) string.
  bool parse_error(std::size_t position, const std::string&, const json::exception&) {
    return Fail(Status(ErrorCode::kInvalidJson, "catalog is not valid JSON (error near byte " +
                                                    std::to_string(position) + ")"));
  }

  const Status& error() const { return error_; }

  Result<Catalog> Finish() {
    if (!has_version_) return Missing("version");
    if (!has_currency_) return Missing("currency");
    const core::Currency* currency = nullptr;
    RETURN_IF_ERROR(CheckCatalogHeader(version_, currency_, &currency));
    if (!has_products_) return Missing("products");

    std::vector<CatalogProduct> products;
    products.reserve(raw_.size());
    for (size_t i = 0; i < raw_.size(); ++i) {
      RawProduct& raw = raw_[i];
      CatalogProduct p;
      if (!raw.has_sku) return Missing(ProductPath(i, "sku"));
      RETURN_IF_ERROR(CheckText(raw.sku, ProductPath(i, "sku"), 1, kMaxSkuChars));
      if (!raw.has_name) return Missing(ProductPath(i, "name"));
      RETURN_IF_ERROR(CheckText(raw.name, ProductPath(i, "name"), 0, kMaxNameChars));
      if (!raw.has_price) return Missing(ProductPath(i, "price"));
      RETURN_IF_ERROR(ParsePrice(raw.price, *currency, ProductPath(i, "price"), &p.price_minor));
      if (!raw.has_tax_rate) return Missing(ProductPath(i, "tax_rate"));
      RETURN_IF_ERROR(ParseTaxRate(raw.tax_rate, ProductPath(i, "tax_rate"), &p.tax_rate_micro));
      p.sku = std::move(raw.sku);
      p.name = std::move(raw.name);
      p.active = raw.active;
      products.push_back(std::move(p));
    }
    raw_.clear();
    raw_.shrink_to_fit();

    // Sort by sku, remembering where each product stood so a duplicate is reported at
    // its second occurrence in the document.
    std::vector<uint32_t> order(products.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return products[a].sku < products[b].sku; });
    for (size_t k = 1; k < order.size(); ++k) {
      if (products[order[k - 1]].sku == products[order[k]].sku) {
        return Invalid(ProductPath(order[k], "sku"),
                       "duplicates " + ProductPath(order[k - 1], "sku").str());
      }
    }
    Catalog catalog;
    catalog.version = std::move(version_);
    catalog.currency = std::move(currency_);
    catalog.products.reserve(products.size());
    for (uint32_t i : order) catalog.products.push_back(std::move(products[i]));
    return catalog;
  }

 private:
  enum class Kind { kString, kBool, kObject, kArray, kOther };
  enum class Where { kStart, kTop, kProducts, kProduct, kDone };

  static bool IsContainer(Kind kind) { return kind == Kind::kObject || kind == Kind::kArray; }

  bool Fail(Status status) {
    if (error_.ok()) error_ = std::move(status);
    return false;
  }

  // An unknown member: skip its value, whatever its shape.
  bool Ignore(Kind kind) {
    if (IsContainer(kind)) skip_ = 1;
    return true;
  }

  bool TakeString(Kind kind, std::string* value, const Path& path, std::string* out,
                  bool* present) {
    if (kind != Kind::kString) return Fail(Invalid(path, "must be a string"));
    *out = std::move(*value);
    *present = true;
    return true;
  }

  bool Value(Kind kind, std::string* str, bool boolean) {
    if (skip_ > 0) {
      if (IsContainer(kind)) ++skip_;
      return true;
    }
    switch (where_) {
      case Where::kStart:
        if (kind != Kind::kObject) {
          return Fail(Status(ErrorCode::kInvalidJson, "the catalog must be a JSON object"));
        }
        where_ = Where::kTop;
        return true;
      case Where::kTop:
        if (key_ == "version") {
          return TakeString(kind, str, "version", &version_, &has_version_);
        }
        if (key_ == "currency") {
          return TakeString(kind, str, "currency", &currency_, &has_currency_);
        }
        if (key_ == "products") {
          if (kind != Kind::kArray) return Fail(Invalid("products", "must be an array"));
          has_products_ = true;
          raw_.clear();
          where_ = Where::kProducts;
          return true;
        }
        return Ignore(kind);
      case Where::kProducts:
        if (raw_.size() >= kMaxCatalogProducts) {
          return Fail(Invalid("products", "must hold at most " +
                                              std::to_string(kMaxCatalogProducts) + " products"));
        }
        if (kind != Kind::kObject)
          return Fail(Invalid(ProductPath(raw_.size()), "must be an object"));
        raw_.emplace_back();
        key_.clear();
        where_ = Where::kProduct;
        return true;
      case Where::kProduct: {
        RawProduct& p = raw_.back();
        const size_t i = raw_.size() - 1;
        if (key_ == "sku") return TakeString(kind, str, ProductPath(i, "sku"), &p.sku, &p.has_sku);
        if (key_ == "name") {
          return TakeString(kind, str, ProductPath(i, "name"), &p.name, &p.has_name);
        }
        if (key_ == "price") {
          return TakeString(kind, str, ProductPath(i, "price"), &p.price, &p.has_price);
        }
        if (key_ == "tax_rate") {
          return TakeString(kind, str, ProductPath(i, "tax_rate"), &p.tax_rate, &p.has_tax_rate);
        }
        if (key_ == "active") {
          if (kind != Kind::kBool)
            return Fail(Invalid(ProductPath(i, "active"), "must be true or false"));
          p.active = boolean;
          return true;
        }
        return Ignore(kind);
      }
      case Where::kDone:
        return true;
    }
    return true;
  }

  Status error_;
  Where where_ = Where::kStart;
  int64_t skip_ = 0;  // > 0: inside an ignored container, this deep
  std::string key_;
  std::string version_, currency_;
  bool has_version_ = false, has_currency_ = false, has_products_ = false;
  std::vector<RawProduct> raw_;
};

void AppendProduct(std::string* out, const CatalogProduct& p, int minor_units,
                   std::string_view currency) {
  out->append("{\"sku\":");
  core::AppendJsonString(out, p.sku);
  out->append(",\"name\":");
  core::AppendJsonString(out, p.name);
  out->append(",\"price\":\"");
  core::AppendDecimal(out, p.price_minor, minor_units);
  out->append("\",\"tax_rate\":\"");
  core::AppendDecimal(out, p.tax_rate_micro, kTaxRatePlaces, /*trim_zeros=*/true);
  out->append("\",\"active\":");
  out->append(p.active ? "true" : "false");
  if (!currency.empty()) {
    out->append(",\"currency\":");
    core::AppendJsonString(out, currency);
  }
  out->push_back('}');
}

// Skips optional whitespace; true when something is left.
bool SkipSpace(std::string_view s, size_t* i) {
  while (*i < s.size() && (s[*i] == ' ' || s[*i] == '\t')) ++*i;
  return *i < s.size();
}

// The opaque part of an entity tag, for weak comparison: W/"x" and "x" both give "x".
std::string_view OpaqueTag(std::string_view tag) {
  if (tag.starts_with("W/")) tag.remove_prefix(2);
  return tag;
}

}  // namespace

namespace internal {

Status Missing(const core::FieldPath& path) {
  const std::string where = path.str();
  return Status(ErrorCode::kMissingField, where + " is required", where);
}

Status Invalid(const core::FieldPath& path, const std::string& what) {
  const std::string where = path.str();
  return Status(ErrorCode::kInvalidField, where + " " + what, where);
}

Status CheckText(std::string_view value, const core::FieldPath& path, int64_t min_chars,
                 int64_t max_chars) {
  const int64_t n = TextChars(value);
  if (n == -2) return Invalid(path, "is not valid UTF-8");
  const std::string problem = core::TextLengthProblem(n, min_chars, max_chars);
  if (problem.empty()) return Status::Ok();
  return Invalid(path, problem);
}

}  // namespace internal

std::string internal::StoreObjectKey(std::string_view prefix, std::string_view folder,
                                     std::string_view store_id, std::string_view name) {
  while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  std::string key(prefix);
  if (!key.empty()) key += '/';
  key.append(folder).append("/store=").append(store_id).append("/").append(name);
  return key;
}

std::string CatalogKey(std::string_view prefix, std::string_view store_id) {
  return internal::StoreObjectKey(prefix, "catalog", store_id, "catalog.json");
}

Result<Catalog> ParseCatalog(std::string_view json) {
  if (json.size() > kMaxCatalogBytes) {
    return Status(ErrorCode::kPayloadTooLarge,
                  "catalog is larger than " + std::to_string(kMaxCatalogBytes) + " bytes");
  }
  CatalogSax sax;
  bool parsed = false;
  try {
    parsed = nlohmann::json::sax_parse(json.data(), json.data() + json.size(), &sax);
  } catch (const std::exception&) {
    // sax_parse reports through parse_error; this is only for allocation failures.
    return Status(ErrorCode::kInvalidJson, "catalog could not be parsed");
  }
  if (!sax.error().ok()) return sax.error();
  if (!parsed) return Status(ErrorCode::kInvalidJson, "catalog is not valid JSON");
  return sax.Finish();
}

Status ValidateCatalog(const Catalog& catalog) {
  const core::Currency* currency = nullptr;
  RETURN_IF_ERROR(CheckCatalogHeader(catalog.version, catalog.currency, &currency));
  if (catalog.products.size() > kMaxCatalogProducts) {
    return Invalid("products",
                   "must hold at most " + std::to_string(kMaxCatalogProducts) + " products");
  }
  for (size_t i = 0; i < catalog.products.size(); ++i) {
    const CatalogProduct& p = catalog.products[i];
    RETURN_IF_ERROR(CheckText(p.sku, ProductPath(i, "sku"), 1, kMaxSkuChars));
    RETURN_IF_ERROR(CheckText(p.name, ProductPath(i, "name"), 0, kMaxNameChars));
    RETURN_IF_ERROR(CheckPriceRange(p.price_minor, ProductPath(i, "price")));
    RETURN_IF_ERROR(CheckTaxRange(p.tax_rate_micro, ProductPath(i, "tax_rate")));
    if (i > 0 && !(catalog.products[i - 1].sku < p.sku)) {
      return Invalid(ProductPath(i, "sku"), "is out of order or duplicates the previous sku");
    }
  }
  return Status::Ok();
}

const CatalogProduct* CatalogView::Find(std::string_view sku) const {
  auto it = std::lower_bound(
      catalog.products.begin(), catalog.products.end(), sku,
      [](const CatalogProduct& p, std::string_view wanted) { return p.sku < wanted; });
  if (it == catalog.products.end() || it->sku != sku) return nullptr;
  return &*it;
}

std::optional<std::string> CatalogView::ProductJson(std::string_view sku) const {
  const CatalogProduct* p = Find(sku);
  if (p == nullptr) return std::nullopt;
  std::string out;
  out.reserve(96 + p->sku.size() + p->name.size());
  AppendProduct(&out, *p, minor_units, catalog.currency);
  return out;
}

std::shared_ptr<const CatalogView> MakeCatalogView(Catalog catalog) {
  auto view = std::make_shared<CatalogView>();
  const core::Currency* currency = core::FindCurrency(catalog.currency);
  view->minor_units = currency != nullptr ? currency->minor_units : 2;
  std::string& body = view->body;
  size_t estimate = 64 + catalog.version.size();
  for (const CatalogProduct& p : catalog.products) estimate += 80 + p.sku.size() + p.name.size();
  body.reserve(estimate);
  body.append("{\"version\":");
  core::AppendJsonString(&body, catalog.version);
  body.append(",\"currency\":");
  core::AppendJsonString(&body, catalog.currency);
  body.append(",\"products\":[");
  for (size_t i = 0; i < catalog.products.size(); ++i) {
    if (i > 0) body.push_back(',');
    AppendProduct(&body, catalog.products[i], view->minor_units, {});
  }
  body.append("]}");
  // Built piecewise: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.
  view->etag.reserve(34);
  view->etag.push_back('"');
  view->etag.append(core::ToHex(core::Sha256(body)), 0, 32);
  view->etag.push_back('"');
  view->catalog = std::move(catalog);
  return view;
}

bool IfNoneMatchHits(std::string_view header, std::string_view etag) {
  const std::string_view wanted = OpaqueTag(etag);
  size_t i = 0;
  while (SkipSpace(header, &i)) {
    if (header[i] == ',') {
      ++i;
      continue;
    }
    if (header[i] == '*') return true;
    size_t start = i;
    if (header.substr(i).starts_with("W/")) i += 2;
    size_t end;
    if (i < header.size() && header[i] == '"') {
      // A quoted tag may itself hold commas: it ends at the closing quote.
      size_t close = header.find('"', i + 1);
      end = close == std::string_view::npos ? header.size() : close + 1;
    } else {
      end = header.find(',', i);
      if (end == std::string_view::npos) end = header.size();
      while (end > i && (header[end - 1] == ' ' || header[end - 1] == '\t')) --end;
    }
    if (OpaqueTag(header.substr(start, end - start)) == wanted) return true;
    i = end;
  }
  return false;
}

}  // namespace machub::catalog
