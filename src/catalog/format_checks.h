#pragma once
// What the documents this module parses (catalog.json, store.json) share: their object
// keys, and field checks whose errors carry the JSON path in field() and quote no value.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/text.h"

namespace machub::catalog::internal {

// kMissingField "<path> is required".
Status Missing(const core::FieldPath& path);
// kInvalidField "<path> <what>".
Status Invalid(const core::FieldPath& path, const std::string& what);
// Valid UTF-8 without control characters, min_chars..max_chars code points.
Status CheckText(std::string_view value, const core::FieldPath& path, int64_t min_chars,
                 int64_t max_chars);

// "<prefix>/<folder>/store=<store_id>/<name>", slashes at the ends of prefix dropped; an
// empty prefix gives "<folder>/...".
std::string StoreObjectKey(std::string_view prefix, std::string_view folder,
                           std::string_view store_id, std::string_view name);

}  // namespace machub::catalog::internal
