#include "core/refund_rules.h"

#include <gtest/gtest.h>

#include <string>

#include "core/sale_codec.h"

namespace machub::core {
namespace {

Sale Must(const std::string& json) {
  Result<Sale> sale = DecodeSale(json);
  EXPECT_TRUE(sale.ok()) << sale.status().ToString();
  return sale.ok() ? *sale : Sale{};
}

// 3 x A at 2.00 (10 % tax) + 1 x B at 5.00 untaxed: total 6.60 + 5.00 = 11.60.
Sale Original() {
  return Must(
      R"({"id":"s1","terminal_id":"T01","created_at":"2026-12-05T09:00:00Z","currency":"USD",)"
      R"("lines":[{"sku":"A","qty":"3","unit_price":"2.00","tax_rate":"0.1"},)"
      R"({"sku":"B","qty":"1","unit_price":"5.00"}],)"
      R"("payments":[{"method":"cash","amount":"20.00"}]})");
}

Sale Reversal(const std::string& type, const std::string& lines,
              const std::string& currency = "USD", const std::string& terminal = "T02") {
  return Must(R"({"id":"r-)" + type + R"(","terminal_id":")" + terminal + R"(","type":")" + type +
              R"(","ref":"s1","created_at":"2026-12-05T10:00:00Z","currency":")" + currency +
              R"(","lines":[)" + lines + "]}");
}

const char kOneA[] = R"({"sku":"A","qty":"1","unit_price":"2.00","tax_rate":"0.1"})";

TEST(RefundRulesTest, PartialRefundsUpToTheOriginal) {
  const Sale original = Original();
  std::vector<Sale> earlier;
  for (int i = 0; i < 3; ++i) {
    const Sale refund = Reversal("refund", kOneA);  // another terminal than the sale's
    EXPECT_TRUE(CheckReversal(original, earlier, refund).ok()) << i;
    earlier.push_back(refund);
  }
  const Status fourth = CheckReversal(original, earlier, Reversal("refund", kOneA));
  EXPECT_EQ(fourth.code(), ErrorCode::kRefundExceedsOriginal);
  EXPECT_EQ(fourth.field(), "lines[0]");
  EXPECT_TRUE(CheckReversal(original, earlier,
                            Reversal("refund", R"({"sku":"B","qty":"1","unit_price":"5.00"})"))
                  .ok());
}

TEST(RefundRulesTest, QuantityAndAmountEachBound) {
  const Sale original = Original();
  const Status qty = CheckReversal(
      original, {}, Reversal("refund", R"({"sku":"A","qty":"3.001","unit_price":"0.01"})"));
  EXPECT_EQ(qty.code(), ErrorCode::kRefundExceedsOriginal);
  EXPECT_EQ(qty.field(), "lines[0]");
  // Same quantity, dearer price: the amount is over.
  const Status amount = CheckReversal(
      original, {}, Reversal("refund", R"({"sku":"A","qty":"1","unit_price":"6.61"})"));
  EXPECT_EQ(amount.code(), ErrorCode::kRefundExceedsOriginal);
  // Two lines of one sku in one request add up.
  const Status split = CheckReversal(
      original, {},
      Reversal("refund", std::string(kOneA) + "," + kOneA + "," + kOneA + "," + kOneA));
  EXPECT_EQ(split.code(), ErrorCode::kRefundExceedsOriginal);
  EXPECT_EQ(split.field(), "lines[3]");
  const Status unknown = CheckReversal(
      original, {}, Reversal("refund", R"({"sku":"Z","qty":"1","unit_price":"0.10"})"));
  EXPECT_EQ(unknown.code(), ErrorCode::kInvalidField);
  EXPECT_EQ(unknown.field(), "lines[0].sku");
}

TEST(RefundRulesTest, EverythingRefundedLeavesNothing) {
  // Untaxed refund lines at the taxed sku's gross price stay under per-sku limits, but
  // the original's total still caps the sum.
  Sale original = Original();
  std::vector<Sale> earlier = {Reversal("refund", R"({"sku":"B","qty":"1","unit_price":"5.00"})")};
  EXPECT_TRUE(CheckReversal(original, earlier,
                            Reversal("refund", R"({"sku":"A","qty":"3","unit_price":"2.20"})"))
                  .ok());
  earlier.push_back(Reversal("refund", R"({"sku":"A","qty":"3","unit_price":"2.20"})"));
  const Status over = CheckReversal(
      original, earlier, Reversal("refund", R"({"sku":"A","qty":"0.001","unit_price":"0.00"})"));
  EXPECT_EQ(over.code(), ErrorCode::kRefundExceedsOriginal) << "nothing of A is left";
  // The whole sale refunded to the cent: nothing more, not even one cent of B.
  EXPECT_EQ(
      CheckReversal(original, {Reversal("refund", R"({"sku":"B","qty":"1","unit_price":"5.00"})")},
                    Reversal("refund", R"({"sku":"B","qty":"0.001","unit_price":"1.00"})"))
          .code(),
      ErrorCode::kRefundExceedsOriginal);
}

TEST(RefundRulesTest, VoidRules) {
  const Sale original = Original();
  const Sale full_void = Reversal(
      "void", std::string(R"({"sku":"A","qty":"3","unit_price":"2.00","tax_rate":"0.1"},)") +
                  R"({"sku":"B","qty":"1","unit_price":"5.00"})");
  EXPECT_TRUE(CheckReversal(original, {}, full_void).ok());
  const Status second = CheckReversal(original, {full_void}, full_void);
  EXPECT_EQ(second.code(), ErrorCode::kAlreadyVoided);
  EXPECT_EQ(second.field(), "ref");
  const Status refund_after = CheckReversal(original, {full_void}, Reversal("refund", kOneA));
  EXPECT_EQ(refund_after.code(), ErrorCode::kAlreadyVoided);
  const Status void_after_refund = CheckReversal(original, {Reversal("refund", kOneA)}, full_void);
  EXPECT_EQ(void_after_refund.code(), ErrorCode::kNotRefundable);
}

TEST(RefundRulesTest, NoRefundOfARefundAndCurrencyMustMatch) {
  const Sale refund = Reversal("refund", kOneA);
  const Status of_refund = CheckReversal(refund, {}, Reversal("refund", kOneA));
  EXPECT_EQ(of_refund.code(), ErrorCode::kNotRefundable);
  EXPECT_EQ(of_refund.field(), "ref");
  const Status eur = CheckReversal(Original(), {}, Reversal("refund", kOneA, "EUR"));
  EXPECT_EQ(eur.code(), ErrorCode::kCurrencyMismatch);
  EXPECT_EQ(eur.field(), "currency");
  EXPECT_EQ(ErrorCodeName(eur.code()), "currency_mismatch");
}

}  // namespace
}  // namespace machub::core
