#include "core/sale.h"

namespace machub::core {

std::string_view SaleTypeName(SaleType type) {
  switch (type) {
    case SaleType::kSale:
      return "sale";
    case SaleType::kRefund:
      return "refund";
    case SaleType::kVoid:
      return "void";
  }
  return "sale";
}

}  // namespace machub::core
