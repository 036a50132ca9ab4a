#include "core/report.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "core/currency.h"
#include "core/money.h"

namespace machub::core {
namespace {

using OJson = nlohmann::ordered_json;

// Checked arithmetic: the first overflow marks the whole computation as failed.
struct Acc {
  bool overflow = false;
  void Add(int64_t* into, int64_t value) {
    if (__builtin_add_overflow(*into, value, into)) overflow = true;
  }
  void Sub(int64_t* into, int64_t value) {
    if (__builtin_sub_overflow(*into, value, into)) overflow = true;
  }
};

int64_t CashOf(const Sale& sale) {
  int64_t cash = 0;
  for (const Payment& p : sale.payments) {
    if (p.method == "cash") cash += p.amount;  // each <= 10^15, at most 20: no overflow
  }
  return cash;
}

}  // namespace

TypeTotals ReportFigures::net() const {
  TypeTotals n;
  n.count = sales.count;
  n.subtotal = sales.subtotal - refunds.subtotal - voids.subtotal;
  n.tax = sales.tax - refunds.tax - voids.tax;
  n.total = sales.total - refunds.total - voids.total;
  return n;
}

Result<ReportFigures> ComputeReport(const std::vector<JournalEntry>& entries,
                                    std::string_view currency) {
  ReportFigures r;
  r.currency = std::string(currency);
  Acc acc;
  std::map<std::string, size_t> open_session;  // terminal -> index in r.drawers
  int64_t prev_seq = 0;
  for (const JournalEntry& entry : entries) {
    if (entry.seq <= prev_seq) {
      return Status(ErrorCode::kInvalidArgument, "report entries must be in increasing seq order");
    }
    prev_seq = entry.seq;
    if (r.first_seq == 0) r.first_seq = entry.seq;
    r.last_seq = entry.seq;
    ++r.entries;

    if (const Sale* sale = entry.sale()) {
      if (sale->currency != currency) {
        ++r.other_currency_entries;
        continue;
      }
      TerminalFigures& term = r.terminals[sale->terminal_id];
      if (term.first_receipt.empty()) term.first_receipt = entry.receipt_no;
      term.last_receipt = entry.receipt_no;
      const bool is_sale = sale->type == SaleType::kSale;
      TypeTotals& totals = is_sale                           ? r.sales
                           : sale->type == SaleType::kRefund ? r.refunds
                                                             : r.voids;
      int64_t& term_count = is_sale                           ? term.sales
                            : sale->type == SaleType::kRefund ? term.refunds
                                                              : term.voids;
      ++term_count;
      ++totals.count;
      acc.Add(&totals.subtotal, sale->subtotal);
      acc.Add(&totals.tax, sale->tax_total);
      acc.Add(&totals.total, sale->total);
      for (const Line& line : sale->lines) {
        RateTotals& rate = r.by_tax_rate[line.tax_rate_micro];
        if (is_sale) {
          acc.Add(&rate.net, line.net);
          acc.Add(&rate.tax, line.tax);
        } else {
          acc.Sub(&rate.net, line.net);
          acc.Sub(&rate.tax, line.tax);
        }
      }
      for (const Payment& p : sale->payments) {
        MethodTotals& m = r.by_method[p.method];
        if (is_sale) {
          ++m.sales_count;
          acc.Add(&m.collected, p.amount);
          if (p.method == "card" && p.offline) {
            ++r.offline_card_count;
            acc.Add(&r.offline_card_amount, p.amount);
          }
        } else {
          ++m.refunds_count;
          acc.Add(&m.returned, p.amount);
        }
      }
      int64_t cash_delta = 0;
      if (is_sale) {
        if (sale->change > 0) acc.Sub(&r.by_method["cash"].collected, sale->change);
        cash_delta = CashOf(*sale) - sale->change;
      } else {
        cash_delta = -CashOf(*sale);
      }
      if (cash_delta != 0) {
        const auto it = open_session.find(sale->terminal_id);
        if (it == open_session.end()) {
          acc.Add(&r.cash_without_drawer[sale->terminal_id], cash_delta);
        } else if (cash_delta > 0) {
          acc.Add(&r.drawers[it->second].cash_sales, cash_delta);
        } else {
          acc.Add(&r.drawers[it->second].cash_refunds, -cash_delta);
        }
      }
      continue;
    }

    const StoreEvent& event = *entry.event();
    if (event.type == EventType::kZReport) {
      ++r.z_reports;
      continue;
    }
    if (event.currency != currency) {
      ++r.other_currency_entries;
      continue;
    }
    switch (event.type) {
      case EventType::kDrawerOpen: {
        DrawerSession session;
        session.terminal_id = event.terminal_id;
        session.opened_seq = entry.seq;
        session.float_amount = event.amount;
        r.drawers.push_back(std::move(session));
        open_session[event.terminal_id] = r.drawers.size() - 1;
        break;
      }
      case EventType::kCashIn:
      case EventType::kCashOut: {
        const bool in = event.type == EventType::kCashIn;
        acc.Add(in ? &r.cash_in : &r.cash_out, event.amount);
        const auto it = open_session.find(event.terminal_id);
        if (it == open_session.end()) {
          int64_t& loose = r.cash_without_drawer[event.terminal_id];
          if (in) {
            acc.Add(&loose, event.amount);
          } else {
            acc.Sub(&loose, event.amount);
          }
        } else {
          DrawerSession& s = r.drawers[it->second];
          acc.Add(in ? &s.cash_in : &s.cash_out, event.amount);
        }
        break;
      }
      case EventType::kDrawerClose: {
        const auto it = open_session.find(event.terminal_id);
        if (it == open_session.end()) break;  // nothing to close in this range
        DrawerSession& s = r.drawers[it->second];
        s.closed_seq = entry.seq;
        s.counted = event.amount;
        open_session.erase(it);
        break;
      }
      case EventType::kZReport:
      case EventType::kPaymentAuthorization:  // an outcome moves no money in the store
        break;
    }
  }
  for (const DrawerSession& s : r.drawers) {
    // expected() and variance() must be representable too.
    int64_t e = s.float_amount;
    acc.Add(&e, s.cash_sales);
    acc.Sub(&e, s.cash_refunds);
    acc.Add(&e, s.cash_in);
    acc.Sub(&e, s.cash_out);
    if (s.counted) acc.Sub(&e, *s.counted);
  }
  if (acc.overflow) {
    return Status(ErrorCode::kInvalidArgument, "report figures overflow 64-bit minor units");
  }
  return r;
}

size_t EntriesSinceLastZ(const std::vector<JournalEntry>& entries) {
  for (size_t i = entries.size(); i > 0; --i) {
    const StoreEvent* event = entries[i - 1].event();
    if (event != nullptr && event->type == EventType::kZReport) return i;
  }
  return 0;
}

nlohmann::ordered_json DrawerSessionJson(const DrawerSession& s, int minor_units) {
  auto money = [minor_units](int64_t v) { return FormatAmount(v, minor_units); };
  OJson e = OJson::object();
  e["terminal_id"] = s.terminal_id;
  e["opened_seq"] = s.opened_seq;
  if (s.closed_seq != 0) e["closed_seq"] = s.closed_seq;
  e["float"] = money(s.float_amount);
  e["cash_sales"] = money(s.cash_sales);
  e["cash_refunds"] = money(s.cash_refunds);
  e["cash_in"] = money(s.cash_in);
  e["cash_out"] = money(s.cash_out);
  e["expected"] = money(s.expected());
  if (s.counted) {
    e["counted"] = money(*s.counted);
    e["variance"] = money(*s.variance());
  }
  return e;
}

std::string ReportFiguresJson(const ReportFigures& f) {
  const Currency* currency = FindCurrency(f.currency);
  const int minor = currency != nullptr ? currency->minor_units : 2;
  auto money = [minor](int64_t v) { return FormatAmount(v, minor); };
  auto totals = [&](const TypeTotals& t) {
    OJson j = OJson::object();
    j["count"] = t.count;
    j["subtotal"] = money(t.subtotal);
    j["tax"] = money(t.tax);
    j["total"] = money(t.total);
    return j;
  };
  OJson j = OJson::object();
  j["currency"] = f.currency;
  j["first_seq"] = f.first_seq;
  j["last_seq"] = f.last_seq;
  j["entries"] = f.entries;
  j["sales"] = totals(f.sales);
  j["refunds"] = totals(f.refunds);
  j["voids"] = totals(f.voids);
  j["net"] = totals(f.net());
  OJson methods = OJson::array();
  for (const auto& [name, m] : f.by_method) {
    OJson e = OJson::object();
    e["method"] = name;
    e["sales_count"] = m.sales_count;
    e["collected"] = money(m.collected);
    e["refunds_count"] = m.refunds_count;
    e["returned"] = money(m.returned);
    e["net"] = money(m.net());
    methods.push_back(std::move(e));
  }
  j["by_method"] = std::move(methods);
  OJson rates = OJson::array();
  for (const auto& [rate, t] : f.by_tax_rate) {
    OJson e = OJson::object();
    std::string text;
    AppendDecimal(&text, rate, 6, /*trim_zeros=*/true);
    e["rate"] = text;
    e["net"] = money(t.net);
    e["tax"] = money(t.tax);
    rates.push_back(std::move(e));
  }
  j["by_tax_rate"] = std::move(rates);
  OJson terminals = OJson::array();
  for (const auto& [id, t] : f.terminals) {
    OJson e = OJson::object();
    e["terminal_id"] = id;
    e["first_receipt"] = t.first_receipt;
    e["last_receipt"] = t.last_receipt;
    e["sales"] = t.sales;
    e["refunds"] = t.refunds;
    e["voids"] = t.voids;
    terminals.push_back(std::move(e));
  }
  j["terminals"] = std::move(terminals);
  OJson drawers = OJson::array();
  for (const DrawerSession& s : f.drawers) {
    drawers.push_back(DrawerSessionJson(s, minor));
  }
  j["drawers"] = std::move(drawers);
  OJson loose = OJson::array();
  for (const auto& [id, amount] : f.cash_without_drawer) {
    OJson e = OJson::object();
    e["terminal_id"] = id;
    e["amount"] = money(amount);
    loose.push_back(std::move(e));
  }
  j["cash_without_drawer"] = std::move(loose);
  OJson offline = OJson::object();
  offline["count"] = f.offline_card_count;
  offline["amount"] = money(f.offline_card_amount);
  j["offline_card"] = std::move(offline);
  j["cash_in"] = money(f.cash_in);
  j["cash_out"] = money(f.cash_out);
  j["z_reports"] = f.z_reports;
  j["other_currency_entries"] = f.other_currency_entries;
  return j.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

}  // namespace machub::core
