#pragma once
// The rules a refund or void must satisfy against its original sale (issue #8). Pure:
// the journal's single writer looks up the original and every refund/void already
// accepted against it, calls CheckReversal and only then writes, all in one
// transaction, so two terminals racing on one sale cannot both win.
//
// Rules, checked in this order (one error reported):
//  1. The original must be a sale: a refund or void of a refund/void ->
//     kNotRefundable (field "ref").
//  2. Currency must match the original's -> kCurrencyMismatch ("currency").
//  3. A voided original takes nothing more: kAlreadyVoided ("ref").
//  4. A void of a sale that already has refunds -> kNotRefundable ("ref") (refund the
//     rest instead; a void cancels a whole sale).
//  5. Each line's sku must be one of the original's skus -> kInvalidField
//     ("lines[i].sku"). Per sku, the quantities of all refunds/voids (earlier ones plus
//     this one) may not exceed the original's quantity, and their amounts (net + tax) may
//     not exceed the original's -> kRefundExceedsOriginal ("lines[i]").
//  6. The total of all refunds/voids may not exceed the original's total ->
//     kRefundExceedsOriginal ("total").
// Any terminal may refund any terminal's sale: terminal ids are not compared.
// Messages quote only the hub's own figures (what is left), never client text.

#include <vector>

#include "core/sale.h"
#include "core/status.h"

namespace machub::core {

// `earlier`: the refunds and voids already accepted against `original` (any order).
Status CheckReversal(const Sale& original, const std::vector<Sale>& earlier, const Sale& reversal);

}  // namespace machub::core
