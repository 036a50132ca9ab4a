#include "app/salegen.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/currency.h"
#include "core/sale_codec.h"

namespace machub::app {
namespace {

constexpr char kCreatedAt[] = "2026-11-27T10:15:00.000Z";

TEST(PrngTest, DeterministicAndInRange) {
  Prng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
    EXPECT_LT(a.Below(7), 7u);
    double u = a.Uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    b.Below(7);
    b.Uniform();
  }
  EXPECT_TRUE(differs);
}

TEST(SaleGeneratorTest, IdsLookLikeUuidV4AndAreUnique) {
  SaleGenerator gen("T01", "USD", 2, 7);
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = gen.NextId();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[13], '-');
    EXPECT_EQ(id[14], '4');
    EXPECT_EQ(id[18], '-');
    EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b') << id;
    EXPECT_EQ(id[23], '-');
    EXPECT_TRUE(ids.insert(id).second);
  }
}

TEST(SaleGeneratorTest, SameSeedSameBodies) {
  SaleGenerator a("T01", "USD", 2, 99), b("T01", "USD", 2, 99);
  std::string body_a, body_b;
  GeneratedSale info_a, info_b;
  for (int i = 0; i < 50; ++i) {
    a.NextSale(kCreatedAt, &body_a, &info_a);
    b.NextSale(kCreatedAt, &body_b, &info_b);
    ASSERT_EQ(body_a, body_b);
  }
}

// The generator's arithmetic is written independently of core/; both must agree on every
// body, or the load generator would report total_mismatch errors against a correct hub.
void CheckAgainstCore(const std::string& currency, int minor_units, uint64_t seed, int count) {
  SaleGenerator gen("T07", currency, minor_units, seed);
  std::string body;
  GeneratedSale info;
  int declared = 0, cash_change = 0, decimals = 0, discounts = 0, multi_payment = 0;
  for (int i = 0; i < count; ++i) {
    gen.NextSale(kCreatedAt, &body, &info);
    auto sale = core::DecodeSale(body);
    ASSERT_TRUE(sale.ok()) << sale.status().ToString() << "\n" << body;
    EXPECT_EQ(sale->id, info.id);
    EXPECT_EQ(sale->terminal_id, "T07");
    EXPECT_EQ(sale->type, core::SaleType::kSale);
    EXPECT_EQ(sale->currency, currency);
    EXPECT_EQ(sale->total, info.total) << body;
    EXPECT_EQ(sale->paid, info.paid) << body;
    EXPECT_EQ(sale->change, info.change) << body;
    EXPECT_EQ(static_cast<int>(sale->lines.size()), info.lines);
    EXPECT_GE(info.lines, 1);
    EXPECT_LE(info.lines, 10);
    EXPECT_EQ(sale->declared_total.has_value(), info.declared_total);
    if (sale->declared_total) {
      EXPECT_EQ(*sale->declared_total, info.total);
      ++declared;
    }
    if (info.change > 0) ++cash_change;
    if (sale->payments.size() > 1) ++multi_payment;
    for (const core::Line& line : sale->lines) {
      if (line.qty_milli % 1000 != 0) ++decimals;
      if (line.discount > 0) ++discounts;
    }
    for (const core::Payment& p : sale->payments) {
      if (p.method == "card") {
        EXPECT_EQ(p.card_token.rfind("tok_", 0), 0u);
        EXPECT_EQ(p.last4.size(), 4u);
      }
    }
  }
  // The mix is realistic: every feature shows up.
  EXPECT_GT(declared, count / 4);
  EXPECT_GT(cash_change, count / 10);
  EXPECT_GT(decimals, 0);
  EXPECT_GT(discounts, 0);
  EXPECT_GT(multi_payment, 0);
}

TEST(SaleGeneratorTest, BodiesDecodeAndTotalsMatchCoreUsd) { CheckAgainstCore("USD", 2, 1, 2000); }

TEST(SaleGeneratorTest, BodiesDecodeAndTotalsMatchCoreOtherMinorUnits) {
  for (const char* code : {"JPY", "KWD"}) {
    const core::Currency* c = core::FindCurrency(code);
    ASSERT_NE(c, nullptr) << code;
    CheckAgainstCore(code, c->minor_units, 5, 300);
  }
}

TEST(SaleGeneratorTest, RefundsDecodeWithRef) {
  SaleGenerator gen("T01", "USD", 2, 3);
  std::string body;
  GeneratedSale sale;
  GeneratedSale refund;
  for (int i = 0; i < 200; ++i) {
    gen.NextSale(kCreatedAt, &body, &sale);
    gen.NextRefund(sale, kCreatedAt, &body, &refund);
    auto decoded = core::DecodeSale(body);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString() << "\n" << body;
    EXPECT_EQ(decoded->type, core::SaleType::kRefund);
    EXPECT_EQ(decoded->ref, sale.id);
    EXPECT_EQ(decoded->total, refund.total);
    EXPECT_TRUE(refund.refund);
    EXPECT_NE(refund.id, sale.id);
  }
}

TEST(SaleGeneratorTest, KnownBodyArithmetic) {
  // Pin one case by hand so that both implementations cannot drift together: find a
  // single-line coffee sale and check 2 x 3.50 @ 8.25 % = 7.00 + 0.58.
  SaleGenerator gen("T01", "USD", 2, 11);
  std::string body;
  GeneratedSale info;
  for (int i = 0; i < 20000; ++i) {
    gen.NextSale(kCreatedAt, &body, &info);
    if (info.lines == 1 && body.find("\"sku\":\"0001\"") != std::string::npos &&
        body.find("\"qty\":\"2\"") != std::string::npos &&
        body.find("\"discount\"") == std::string::npos) {
      EXPECT_EQ(info.total, 758) << body;
      return;
    }
  }
  FAIL() << "no single-line 2 x coffee sale generated";
}

}  // namespace
}  // namespace machub::app
