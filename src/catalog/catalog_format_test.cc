// Catalog tests (catalog_test_support.h has the shared pieces): catalog.json and store.json
// documents: format validation and rendering.
#include "catalog/catalog_test_support.h"

namespace machub::catalog {
namespace {

// ---- Format and validation ---------------------------------------------------------

TEST(CatalogParseTest, AcceptsValidCatalogSortedWithDefaults) {
  json doc = ValidDoc();
  doc["products"][0]["active"] = false;
  Result<Catalog> c = ParseCatalog(doc.dump());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->version, "v1");
  EXPECT_EQ(c->currency, "USD");
  ASSERT_EQ(c->products.size(), 2u);
  EXPECT_EQ(c->products[0], (CatalogProduct{"0001", "Coffee", 350, 82500, true}));
  EXPECT_EQ(c->products[1], (CatalogProduct{"0002", "Tea", 200, 0, false}));
  EXPECT_TRUE(ValidateCatalog(*c).ok());
}

TEST(CatalogParseTest, IgnoresUnknownMembersOfAnyShapeAtEveryLevel) {
  json doc = ValidDoc();
  doc["generated_by"] = {{"tool", "backoffice"}, {"nested", {{"products", json::array({1})}}}};
  doc["extra_list"] = json::array({json::array({json::object()}), "x", nullptr, 1.5});
  doc["products"][0]["color"] = "red";
  doc["products"][0]["barcodes"] = json::array({"123", {{"sku", 5}}});
  doc["products"][1]["meta"] = {{"price", 1.25}, {"active", "maybe"}};
  Result<Catalog> c = ParseCatalog(doc.dump());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->products.size(), 2u);
  EXPECT_EQ(c->products[1].price_minor, 200);
}

TEST(CatalogParseTest, EmptyProductListIsValid) {
  Result<Catalog> c = ParseCatalog(CatalogBody("empty", {}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->products.empty());
}

TEST(CatalogParseTest, CurrencyMinorUnitsDecidePricePlaces) {
  Result<Catalog> jpy = ParseCatalog(CatalogBody("j", {Product("A", "Ramen", "980")}, "JPY"));
  ASSERT_TRUE(jpy.ok()) << jpy.status().ToString();
  EXPECT_EQ(jpy->products[0].price_minor, 980);
  Result<Catalog> bad = ParseCatalog(CatalogBody("j", {Product("A", "Ramen", "980.5")}, "JPY"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().field(), "products[0].price");
  // Currency after the products: prices are judged once the currency is known.
  std::string late = R"({"products":[{"sku":"A","name":"x","price":"1.234","tax_rate":"0"}],)"
                     R"("version":"v","currency":"KWD"})";
  Result<Catalog> kwd = ParseCatalog(late);
  ASSERT_TRUE(kwd.ok()) << kwd.status().ToString();
  EXPECT_EQ(kwd->products[0].price_minor, 1234);
}

struct Rejection {
  std::string name;
  std::function<std::string()> body;
  ErrorCode code;
  std::string field;
};

json With(std::function<void(json&)> edit) {
  json doc = ValidDoc();
  edit(doc);
  return doc;
}

std::vector<Rejection> Rejections() {
  auto doc = [](std::function<void(json&)> edit) { return [edit] { return With(edit).dump(); }; };
  auto p0 = [](std::string member, json value) {
    return [member, value](json& d) { d["products"][0][member] = value; };
  };
  auto drop0 = [](std::string member) {
    return [member](json& d) { d["products"][0].erase(member); };
  };
  return {
      {"not_json", [] { return std::string("{\"version\": "); }, ErrorCode::kInvalidJson, ""},
      {"trailing_garbage", [] { return ValidDoc().dump() + " x"; }, ErrorCode::kInvalidJson, ""},
      {"top_level_array", [] { return std::string("[]"); }, ErrorCode::kInvalidJson, ""},
      {"top_level_string", [] { return std::string("\"catalog\""); }, ErrorCode::kInvalidJson, ""},
      {"invalid_utf8",
       [] {
         std::string body = CatalogBody("v", {});
         body[13] = '\xff';  // inside "USD"
         return body;
       },
       ErrorCode::kInvalidJson, ""},
      {"version_missing", doc([](json& d) { d.erase("version"); }), ErrorCode::kMissingField,
       "version"},
      {"version_empty", doc([](json& d) { d["version"] = ""; }), ErrorCode::kInvalidField,
       "version"},
      {"version_number", doc([](json& d) { d["version"] = 7; }), ErrorCode::kInvalidField,
       "version"},
      {"version_too_long", doc([](json& d) { d["version"] = std::string(129, 'v'); }),
       ErrorCode::kInvalidField, "version"},
      {"currency_missing", doc([](json& d) { d.erase("currency"); }), ErrorCode::kMissingField,
       "currency"},
      {"currency_unknown", doc([](json& d) { d["currency"] = "XXQ"; }), ErrorCode::kInvalidField,
       "currency"},
      {"currency_lower_case", doc([](json& d) { d["currency"] = "usd"; }), ErrorCode::kInvalidField,
       "currency"},
      {"products_missing", doc([](json& d) { d.erase("products"); }), ErrorCode::kMissingField,
       "products"},
      {"products_object", doc([](json& d) { d["products"] = json::object(); }),
       ErrorCode::kInvalidField, "products"},
      {"product_not_object", doc([](json& d) { d["products"][1] = "0003"; }),
       ErrorCode::kInvalidField, "products[1]"},
      {"sku_missing", doc(drop0("sku")), ErrorCode::kMissingField, "products[0].sku"},
      {"sku_empty", doc(p0("sku", "")), ErrorCode::kInvalidField, "products[0].sku"},
      {"sku_number", doc(p0("sku", 1)), ErrorCode::kInvalidField, "products[0].sku"},
      {"sku_too_long", doc(p0("sku", std::string(65, 's'))), ErrorCode::kInvalidField,
       "products[0].sku"},
      {"sku_control_char", doc(p0("sku", "00\n01")), ErrorCode::kInvalidField, "products[0].sku"},
      {"sku_duplicate", doc([](json& d) { d["products"].push_back(Product("0002", "Tea again")); }),
       ErrorCode::kInvalidField, "products[2].sku"},
      {"name_missing", doc(drop0("name")), ErrorCode::kMissingField, "products[0].name"},
      {"name_null", doc(p0("name", nullptr)), ErrorCode::kInvalidField, "products[0].name"},
      {"name_too_long", doc(p0("name", std::string(201, 'n'))), ErrorCode::kInvalidField,
       "products[0].name"},
      {"price_missing", doc(drop0("price")), ErrorCode::kMissingField, "products[0].price"},
      {"price_json_number", doc(p0("price", 3.5)), ErrorCode::kInvalidField, "products[0].price"},
      {"price_too_many_places", doc(p0("price", "3.505")), ErrorCode::kInvalidField,
       "products[0].price"},
      {"price_negative", doc(p0("price", "-1.00")), ErrorCode::kInvalidField, "products[0].price"},
      {"price_exponent", doc(p0("price", "1e3")), ErrorCode::kInvalidField, "products[0].price"},
      {"price_empty", doc(p0("price", "")), ErrorCode::kInvalidField, "products[0].price"},
      {"price_too_large", doc(p0("price", "10000000000000.01")), ErrorCode::kInvalidField,
       "products[0].price"},
      {"price_overflow", doc(p0("price", "99999999999999999999")), ErrorCode::kInvalidField,
       "products[0].price"},
      {"tax_rate_missing", doc(drop0("tax_rate")), ErrorCode::kMissingField,
       "products[0].tax_rate"},
      {"tax_rate_above_one", doc(p0("tax_rate", "1.000001")), ErrorCode::kInvalidField,
       "products[0].tax_rate"},
      {"tax_rate_seven_places", doc(p0("tax_rate", "0.0000001")), ErrorCode::kInvalidField,
       "products[0].tax_rate"},
      {"tax_rate_negative", doc(p0("tax_rate", "-0.1")), ErrorCode::kInvalidField,
       "products[0].tax_rate"},
      {"tax_rate_json_number", doc(p0("tax_rate", 0.08)), ErrorCode::kInvalidField,
       "products[0].tax_rate"},
      {"active_string", doc(p0("active", "yes")), ErrorCode::kInvalidField, "products[0].active"},
      {"active_null", doc(p0("active", nullptr)), ErrorCode::kInvalidField, "products[0].active"},
  };
}

TEST(CatalogParseTest, RejectsEachBrokenRule) {
  for (const Rejection& r : Rejections()) {
    SCOPED_TRACE(r.name);
    Result<Catalog> c = ParseCatalog(r.body());
    ASSERT_FALSE(c.ok()) << r.name << " was accepted";
    EXPECT_EQ(c.status().code(), r.code) << c.status().ToString();
    EXPECT_EQ(c.status().field(), r.field) << c.status().ToString();
    EXPECT_FALSE(c.status().message().empty());
  }
}

TEST(CatalogParseTest, LimitsAreInclusive) {
  json doc = ValidDoc();
  doc["version"] = std::string(128, 'v');
  doc["products"][0]["sku"] = std::string(64, 's');
  // 200 code points of 3 bytes each: lengths count characters, not bytes.
  std::string name;
  for (int i = 0; i < 200; ++i) name += "\xe2\x82\xac";
  doc["products"][0]["name"] = name;
  doc["products"][0]["price"] = "10000000000000.00";
  doc["products"][0]["tax_rate"] = "1";
  doc["products"][1]["name"] = "";
  Result<Catalog> c = ParseCatalog(doc.dump());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->products[1].price_minor, 1'000'000'000'000'000);
  EXPECT_EQ(c->products[1].tax_rate_micro, 1'000'000);
}

std::string ManyProducts(size_t n) {
  std::string body = R"({"version":"big","currency":"USD","products":[)";
  char buf[96];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), R"(%s{"sku":"%07zu","name":"","price":"1.00","tax_rate":"0"})",
                  i == 0 ? "" : ",", n - i);
    body += buf;
  }
  return body + "]}";
}

TEST(CatalogParseTest, ProductCountLimit) {
  Result<Catalog> at_limit = ParseCatalog(ManyProducts(kMaxCatalogProducts));
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
  EXPECT_EQ(at_limit->products.size(), kMaxCatalogProducts);
  EXPECT_EQ(at_limit->products.front().sku, "0000001");
  Result<Catalog> over = ParseCatalog(ManyProducts(kMaxCatalogProducts + 1));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), ErrorCode::kInvalidField);
  EXPECT_EQ(over.status().field(), "products");
}

TEST(CatalogParseTest, SizeLimit) {
  std::string body = ValidDoc().dump();
  body.append(kMaxCatalogBytes + 1 - body.size(), ' ');
  Result<Catalog> c = ParseCatalog(body);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kPayloadTooLarge);
  EXPECT_EQ(c.status().field(), "");
}

TEST(CatalogValidateTest, RefusesUnsortedDuplicateAndOutOfRangeRows) {
  Catalog c = *ParseCatalog(ValidDoc().dump());
  EXPECT_TRUE(ValidateCatalog(c).ok());
  Catalog swapped = c;
  std::swap(swapped.products[0], swapped.products[1]);
  EXPECT_EQ(ValidateCatalog(swapped).field(), "products[1].sku");
  Catalog dup = c;
  dup.products[1].sku = dup.products[0].sku;
  EXPECT_EQ(ValidateCatalog(dup).field(), "products[1].sku");
  Catalog negative = c;
  negative.products[0].price_minor = -1;
  EXPECT_EQ(ValidateCatalog(negative).field(), "products[0].price");
  Catalog tax = c;
  tax.products[1].tax_rate_micro = 1'000'001;
  EXPECT_EQ(ValidateCatalog(tax).field(), "products[1].tax_rate");
  Catalog utf8 = c;
  utf8.products[0].name = "bad \xc3";
  EXPECT_EQ(ValidateCatalog(utf8).field(), "products[0].name");
  Catalog currency = c;
  currency.currency = "ZZZ";
  EXPECT_EQ(ValidateCatalog(currency).field(), "currency");
}

TEST(CatalogViewTest, CanonicalBodyEtagAndProducts) {
  json doc = ValidDoc();
  doc["products"][0]["tax_rate"] = "0.100";  // rendered without trailing zeros
  doc["products"][1]["name"] = "Caf\xc3\xa9 \"Latte\"";
  doc["products"][1]["price"] = "3.5";
  doc["ignored"] = true;
  auto view = MakeCatalogView(*ParseCatalog(doc.dump()));
  const std::string expected =
      R"({"version":"v1","currency":"USD","products":[)"
      R"({"sku":"0001","name":"Caf\u00e9 \"Latte\"","price":"3.50","tax_rate":"0.0825","active":true},)"
      R"({"sku":"0002","name":"Tea","price":"2.00","tax_rate":"0.1","active":true}]})";
  EXPECT_EQ(json::parse(view->body), json::parse(expected));
  EXPECT_NE(view->body.find("Caf\xc3\xa9"), std::string::npos) << "UTF-8 kept as is";
  EXPECT_EQ(view->etag, "\"" + core::ToHex(core::Sha256(view->body)).substr(0, 32) + "\"");

  std::optional<std::string> coffee = view->ProductJson("0001");
  ASSERT_TRUE(coffee.has_value());
  EXPECT_EQ(json::parse(*coffee), json::parse(R"({"sku":"0001","name":"Café \"Latte\"",)"
                                              R"("price":"3.50","tax_rate":"0.0825",)"
                                              R"("active":true,"currency":"USD"})"));
  EXPECT_FALSE(view->ProductJson("0003").has_value());
  EXPECT_FALSE(view->ProductJson("").has_value());
  EXPECT_EQ(view->Find("0002")->price_minor, 200);

  // Same content, different document (order, spacing, unknown members) -> same ETag.
  json reordered = ValidDoc();
  std::swap(reordered["products"][0], reordered["products"][1]);
  reordered["products"][0]["tax_rate"] = "0.082500";
  auto a = MakeCatalogView(*ParseCatalog(ValidDoc().dump()));
  auto b = MakeCatalogView(*ParseCatalog(reordered.dump(2)));
  EXPECT_EQ(a->etag, b->etag);
  EXPECT_EQ(a->body, b->body);
  json changed = ValidDoc();
  changed["products"][0]["price"] = "2.01";
  EXPECT_NE(MakeCatalogView(*ParseCatalog(changed.dump()))->etag, a->etag);
}

TEST(CatalogViewTest, IfNoneMatch) {
  const std::string etag = "\"0123abcd\"";
  EXPECT_TRUE(IfNoneMatchHits("\"0123abcd\"", etag));
  EXPECT_TRUE(IfNoneMatchHits("W/\"0123abcd\"", etag));
  EXPECT_TRUE(IfNoneMatchHits("\"x\", \"0123abcd\"", etag));
  EXPECT_TRUE(IfNoneMatchHits("\"a,b\",\"0123abcd\"", etag));
  EXPECT_TRUE(IfNoneMatchHits("*", etag));
  EXPECT_TRUE(IfNoneMatchHits("  \"0123abcd\"  ", etag));
  EXPECT_FALSE(IfNoneMatchHits("", etag));
  EXPECT_FALSE(IfNoneMatchHits("\"0123abc\"", etag));
  EXPECT_FALSE(IfNoneMatchHits("0123abcd", etag));
  EXPECT_FALSE(IfNoneMatchHits("\"a,\"0123abcd\"\"", etag));
}

TEST(CatalogViewTest, Key) {
  EXPECT_EQ(CatalogKey("pos", "S001"), "pos/catalog/store=S001/catalog.json");
  EXPECT_EQ(CatalogKey("/chain/pos/", "S001"), "chain/pos/catalog/store=S001/catalog.json");
  EXPECT_EQ(CatalogKey("", "S9"), "catalog/store=S9/catalog.json");
}

}  // namespace
}  // namespace machub::catalog
