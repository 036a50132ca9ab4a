#pragma once
// Realistic POST /v1/sales bodies for the load generator and for tests.
//
// Bodies are built with plain string appends into a caller-owned buffer (its capacity is
// reused, so steady-state generation does not allocate) from a seeded PRNG: the same seed
// gives the same bodies, apart from created_at, which the caller passes in.
//
// Amounts are computed with exact integer arithmetic following API.md, independently of
// core/ (so that tests comparing both catch a divergence):
//   gross = round_half_up(qty * unit_price), net = gross - discount,
//   tax = round_half_up(net * tax_rate) per line, total = sum(net + tax),
// and cash payments are rounded up so that change is due.
//
// Thread-safety: a SaleGenerator is used by one thread at a time.

#include <cstdint>
#include <string>
#include <string_view>

namespace machub::app {

// xoshiro256** seeded through splitmix64: fast, good enough for load, deterministic.
class Prng {
 public:
  explicit Prng(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, n), n > 0.
  uint64_t Below(uint64_t n);
  // Uniform in [0, 1).
  double Uniform();

 private:
  uint64_t s_[4];
};

// What the generator knows about a body it built.
struct GeneratedSale {
  std::string id;       // UUIDv4-like, 36 characters
  bool refund = false;  // type "refund" (ref = the refunded sale's id)
  // A refund was generated for this sale (its first line): the hub refuses a second one
  // beyond what is left of the sale (refund_exceeds_original), so none is generated.
  bool refunded = false;
  int64_t total = 0;            // minor units, as the hub must compute it
  int64_t paid = 0;             // sum of payments
  int64_t change = 0;           // sale: paid - total; refund: 0
  bool declared_total = false;  // the body carries "total"
  int lines = 0;
  // The first line, so that a later refund can return it exactly (with its discount: a
  // refund of the undiscounted amount would exceed what the customer paid).
  int first_product = 0;
  int64_t first_qty_milli = 0;
  bool first_discount = false;
};

class SaleGenerator {
 public:
  // `minor_units` of `currency` (2 for USD). Product prices are taken as minor units.
  SaleGenerator(std::string terminal_id, std::string currency, int minor_units, uint64_t seed);

  // A sale with 1..10 lines; `created_at` is an RFC 3339 time. Replaces *body.
  void NextSale(std::string_view created_at, std::string* body, GeneratedSale* info);

  // A refund of the first line of `original` (a sale built by this generator), paid back
  // in cash. Replaces *body.
  void NextRefund(const GeneratedSale& original, std::string_view created_at, std::string* body,
                  GeneratedSale* info);

  // A fresh UUIDv4-like id from the generator's PRNG.
  std::string NextId();

 private:
  struct LineResult {
    int64_t net = 0;
    int64_t tax = 0;
  };
  void AppendHeader(std::string* body, std::string_view id, std::string_view type,
                    std::string_view ref, std::string_view created_at);
  LineResult AppendLine(std::string* body, int product, int64_t qty_milli, bool with_discount);
  void AppendAmount(std::string* body, int64_t minor);

  std::string terminal_id_;
  std::string currency_;
  int minor_units_;
  int64_t unit_;  // 10^minor_units_
  Prng prng_;
};

}  // namespace machub::app
