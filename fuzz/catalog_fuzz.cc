// Fuzz target: catalog.json parsing and validation (catalog::ParseCatalog / ValidateCatalog /
// MakeCatalogView). An accepted catalog must validate, render to JSON that parses back to
// the same catalog (the served body is a canonical catalog itself), and answer Find for
// each of its products.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "catalog/catalog.h"
#include "fuzz_check.h"

using machub::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace machub::catalog;
  auto parsed = ParseCatalog(machub::fuzz::AsText(data, size));
  if (!parsed.ok()) {
    Check(parsed.status().code() != machub::ErrorCode::kOk, "error without code");
    return 0;
  }
  Check(ValidateCatalog(*parsed).ok(), "accepted catalog does not validate");
  auto view = MakeCatalogView(*parsed);
  Check(view != nullptr, "no view");
  Check(nlohmann::json::accept(view->body), "served body is not JSON");
  Check(view->etag.size() == 34 && view->etag.front() == '"' && view->etag.back() == '"',
        "etag shape");
  auto reparsed = ParseCatalog(view->body);
  Check(reparsed.ok(), "served body does not parse as a catalog");
  Check(*reparsed == view->catalog, "served body parses to another catalog");
  Check(MakeCatalogView(*reparsed)->body == view->body, "rendering not stable");
  for (const CatalogProduct& p : view->catalog.products) {
    const CatalogProduct* found = view->Find(p.sku);
    Check(found != nullptr && *found == p, "Find misses a product");
    auto json = view->ProductJson(p.sku);
    Check(json.has_value() && nlohmann::json::accept(*json), "product JSON");
  }
  IfNoneMatchHits(machub::fuzz::AsText(data, size > 200 ? 200 : size), view->etag);
  return 0;
}
