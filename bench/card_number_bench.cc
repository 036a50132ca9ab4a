// Cost of the card-number rule on a typical sale (issue 13): DecodeSale of a 3-line sale
// with two payments, which checks every free-text field with core::CheckNoCardNumber,
// against the same decode with those checks taken out of the measurement (the detector
// itself timed alone on the same fields and subtracted). Prints ns per sale.
//
//   build/<preset>/bench/card_number_bench [iterations]
//
// Numbers are for comparing builds on one machine; docs/BENCHMARKS.md has the figures.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/card_number.h"
#include "core/sale_codec.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kSale =
    R"({"id":"9b1de4a2-0001","terminal_id":"T01","type":"sale",)"
    R"("created_at":"2026-11-27T10:15:00Z","currency":"USD","cashier":"c-17",)"
    R"("lines":[{"sku":"0001","name":"Coffee beans, dark roast 1 kg","qty":"2",)"
    R"("unit_price":"3.50","tax_rate":"0.0825"},)"
    R"({"sku":"4006381333931","name":"Oat milk 1 l","qty":"1","unit_price":"1.99"},)"
    R"({"sku":"0042","name":"Croissant","qty":"3","unit_price":"1.20","discount":"0.30"}],)"
    R"("payments":[{"method":"cash","amount":"10.00"},{"method":"card","amount":"5.00",)"
    R"("card_token":"tok_9f8e7d6c5b4a","last4":"4242","brand":"visa","auth_code":"A1B2C3"}]})";

template <typename F>
double NsPer(int iterations, F&& f) {
  const auto start = Clock::now();
  for (int i = 0; i < iterations; ++i) f();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
  return static_cast<double>(ns.count()) / iterations;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 200'000;
  auto sale = machub::core::DecodeSale(kSale);
  if (!sale.ok()) {
    std::fprintf(stderr, "bench sale does not decode: %s\n", sale.status().ToString().c_str());
    return 1;
  }
  // The fields the decoder checks, in its order.
  std::vector<std::string> fields = {sale->id, sale->terminal_id, sale->cashier};
  for (const auto& line : sale->lines) {
    fields.push_back(line.sku);
    fields.push_back(line.name);
  }
  for (const auto& p : sale->payments) {
    for (const std::string* f : {&p.method, &p.card_token, &p.last4, &p.brand, &p.auth_code}) {
      fields.push_back(*f);
    }
  }
  volatile bool sink = false;
  for (int warm = 0; warm < 2; ++warm) {
    const double decode_ns =
        NsPer(iterations, [&] { sink = machub::core::DecodeSale(kSale).ok(); });
    const double check_ns = NsPer(iterations, [&] {
      for (const std::string& f : fields) sink = sink ^ machub::core::ContainsCardNumber(f);
    });
    if (warm == 1) {
      std::printf("fields checked per sale: %zu\n", fields.size());
      std::printf("DecodeSale, 3-line sale, with the card-number checks: %.0f ns/sale\n",
                  decode_ns);
      std::printf("  of which card-number checks:                          %.0f ns/sale (%.1f%%)\n",
                  check_ns, 100.0 * check_ns / decode_ns);
      std::printf("DecodeSale without the checks (difference):             %.0f ns/sale\n",
                  decode_ns - check_ns);
    }
  }
  return sink ? 0 : 0;
}
