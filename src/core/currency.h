#pragma once
// ISO 4217 currencies the hub accepts, with their minor-unit counts.

#include <string_view>

namespace machub::core {

struct Currency {
  std::string_view code;  // "USD"
  int minor_units;        // 2 for USD, 0 for JPY, 3 for KWD, 4 for CLF
};

// Null for an unknown code. Codes are upper-case, exact match.
const Currency* FindCurrency(std::string_view code);

}  // namespace machub::core
