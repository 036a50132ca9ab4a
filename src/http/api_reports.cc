// The report routes of the API handler: the open day's figures (GET /v1/reports/x), the
// drawers (GET /v1/drawers) and the last Z report, computed on the report thread from the
// journal's entries (core/report.h).
#include <string>
#include <utility>
#include <vector>

#include "core/currency.h"
#include "core/log.h"
#include "core/report.h"
#include "core/sale_codec.h"
#include "core/store_event.h"
#include "core/time_format.h"
#include "http/api_internal.h"

namespace machub::http {
namespace {

using namespace api_internal;  // NOLINT(google-build-using-namespace)

// The day's currency when none is asked for: the first entry's, else the last Z
// report's, else USD (the same choice as a Z report's, sale_journal.h).
std::string DefaultCurrency(const journal::SaleJournal::OpenDay& day) {
  for (const core::JournalEntry& entry : day.entries) {
    const std::string& code =
        entry.sale() != nullptr ? entry.sale()->currency : entry.event()->currency;
    if (core::FindCurrency(code) != nullptr) return code;
  }
  if (core::FindCurrency(day.last_z_currency) != nullptr) return day.last_z_currency;
  return "USD";
}

std::optional<core::DrawerSession> FindOpenSession(const core::ReportFigures& figures,
                                                   const std::string& terminal,
                                                   int64_t opened_seq) {
  for (const core::DrawerSession& session : figures.drawers) {
    if (session.terminal_id == terminal && session.opened_seq == opened_seq &&
        session.closed_seq == 0) {
      return session;
    }
  }
  return std::nullopt;
}

core::JournalEntry EntryOf(core::StoredSale stored) {
  core::JournalEntry entry;
  entry.seq = stored.seq;
  entry.receipt_no = std::move(stored.receipt_no);
  entry.received_at_ms = stored.received_at_ms;
  if (stored.event) {
    entry.body = std::move(*stored.event);
  } else {
    entry.body = std::move(stored.sale);
  }
  return entry;
}

ojson OpenDrawerJson(const OpenDrawer& drawer, int minor) {
  if (drawer.session) return core::DrawerSessionJson(*drawer.session, minor);
  ojson j;
  j["terminal_id"] = drawer.terminal_id;
  j["opened_seq"] = drawer.opened_seq;
  j["expected"] = nullptr;  // unknown: see OpenDrawer::session
  return j;
}

ojson LastZJson(const journal::SaleJournal::OpenDay& day) {
  if (day.last_z_seq == 0) return nullptr;
  ojson j;
  j["z_number"] = day.last_z_number;
  j["seq"] = day.last_z_seq;
  j["currency"] = day.last_z_currency;
  return j;
}

}  // namespace

using namespace api_internal;  // NOLINT(google-build-using-namespace)

// The figures of the open business day in the currency asked for (?currency=), else the
// first entry's, else the last Z report's, else USD; and every open drawer's session,
// also those opened before the last Z report (read back from their drawer_open).
Result<DayFigures> ApiHandler::Impl::ReadDay(std::string_view query) {
  DayFigures out;
  if (auto asked = QueryParam(query, "currency")) {
    if (core::FindCurrency(*asked) == nullptr) {
      return Status(ErrorCode::kInvalidField,
                    "currency must be a known ISO 4217 code in upper case (\"USD\")", "currency");
    }
    out.currency = *asked;
  }
  ASSIGN_OR_RETURN(out.day, journal->ReadOpenDay());
  if (out.currency.empty()) out.currency = DefaultCurrency(out.day);
  ASSIGN_OR_RETURN(out.figures, core::ComputeReport(out.day.entries, out.currency));
  int64_t scan_from = 0;
  for (const auto& [terminal, opened_seq] : out.day.open_drawers) {
    OpenDrawer drawer{terminal, opened_seq, FindOpenSession(out.figures, terminal, opened_seq)};
    if (!drawer.session && (scan_from == 0 || opened_seq < scan_from)) scan_from = opened_seq;
    out.open.push_back(std::move(drawer));
  }
  if (scan_from > 0) {
    // A drawer left open over a Z report: its session starts before the open day.
    const int64_t upto = out.day.entries.empty() ? out.day.last_z_seq : out.day.entries.back().seq;
    ASSIGN_OR_RETURN(std::vector<core::JournalEntry> older, ReadEntries(scan_from, upto));
    ASSIGN_OR_RETURN(core::ReportFigures wider, core::ComputeReport(older, out.currency));
    for (OpenDrawer& drawer : out.open) {
      if (!drawer.session) {
        drawer.session = FindOpenSession(wider, drawer.terminal_id, drawer.opened_seq);
      }
    }
  }
  return out;
}

Result<std::vector<core::JournalEntry>> ApiHandler::Impl::ReadEntries(int64_t first_seq,
                                                                      int64_t last_seq) {
  constexpr int kPage = 1000;
  std::vector<core::JournalEntry> out;
  int64_t after = first_seq - 1;
  while (after < last_seq) {
    ASSIGN_OR_RETURN(std::vector<core::StoredSale> page, journal->List(after, kPage));
    if (page.empty()) break;
    for (core::StoredSale& stored : page) {
      if (stored.seq > last_seq) return out;
      out.push_back(EntryOf(std::move(stored)));
    }
    if (out.size() > kMaxDrawerScan) {
      // Too far back to recompute here: the session's figures are left unknown rather
      // than computed from part of it.
      core::LogWarn("drawer_scan_too_long", {{"from_seq", first_seq}, {"to_seq", last_seq}});
      out.clear();
      break;
    }
    after = page.back().seq;
  }
  return out;
}

void ApiHandler::Impl::GetXReport(std::string_view query, const Respond& respond) {
  Result<DayFigures> day = ReadDay(query);
  if (!day.ok()) return respond(ErrorResponse(day.status()));
  const int minor = core::FindCurrency(day->currency)->minor_units;
  ojson out;
  out["report"] = "x";
  out["store_id"] = options.store_id;
  out["generated_at"] = core::FormatRfc3339(clock->NowMs());
  out["currency"] = day->currency;
  out["last_z"] = LastZJson(day->day);
  out["figures"] = ojson::parse(core::ReportFiguresJson(day->figures));
  ojson open = ojson::array();
  for (const OpenDrawer& drawer : day->open) open.push_back(OpenDrawerJson(drawer, minor));
  out["open_drawers"] = std::move(open);
  respond(JsonResponse(200, Dump(out)));
}

void ApiHandler::Impl::GetDrawers(std::string_view query, const Principal& principal,
                                  const Respond& respond) {
  Result<DayFigures> day = ReadDay(query);
  if (!day.ok()) return respond(ErrorResponse(day.status()));
  // A terminal token sees its own terminal's drawer only; a manager every drawer.
  const bool all = principal.role == Role::kManager;
  auto visible = [&](const std::string& terminal) {
    return all || terminal == principal.terminal_id;
  };
  const int minor = core::FindCurrency(day->currency)->minor_units;
  ojson out;
  out["currency"] = day->currency;
  ojson open = ojson::array();
  for (const OpenDrawer& drawer : day->open) {
    if (visible(drawer.terminal_id)) open.push_back(OpenDrawerJson(drawer, minor));
  }
  out["open"] = std::move(open);
  ojson closed = ojson::array();
  for (const core::DrawerSession& session : day->figures.drawers) {
    if (session.closed_seq != 0 && visible(session.terminal_id)) {
      closed.push_back(core::DrawerSessionJson(session, minor));
    }
  }
  out["closed"] = std::move(closed);
  respond(JsonResponse(200, Dump(out)));
}

void ApiHandler::Impl::GetLastZReport(const Respond& respond) {
  Result<journal::SaleJournal::OpenDay> day = journal->ReadOpenDay();
  if (!day.ok()) return respond(ErrorResponse(day.status()));
  if (day->last_z_seq == 0) {
    return respond(ErrorResponse(Status(ErrorCode::kNotFound, "no Z report yet")));
  }
  Result<std::vector<core::StoredSale>> entry = journal->List(day->last_z_seq - 1, 1);
  if (!entry.ok()) return respond(ErrorResponse(entry.status()));
  if (entry->empty() || entry->front().seq != day->last_z_seq || !entry->front().is_event() ||
      entry->front().event->type != core::EventType::kZReport) {
    // Appended, not `"Z" + std::to_string(...)`: GCC 12 at -O3 for aarch64 reports a false
    // -Wrestrict on that (GCC bug 105329; the cross build treats warnings as errors).
    std::string message(1, 'Z');
    message.append(std::to_string(day->last_z_number))
        .append(" is no longer stored on this hub (pruned after upload)");
    return respond(ErrorResponse(Status(ErrorCode::kNotFound, std::move(message))));
  }
  respond(JsonResponse(200, core::StoredSaleJson(entry->front())));
}

}  // namespace machub::http
