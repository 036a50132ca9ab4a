#include "sync/verify.h"

#include <algorithm>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include "core/chain.h"
#include "core/report.h"
#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/store_event.h"
#include "core/time_format.h"
#include "sync/batch_format.h"

namespace machub::sync {
namespace {

using nlohmann::json;

constexpr size_t kMaxProblems = 50;

// One sale as an object presents it, for the chain walk.
struct SaleLink {
  int64_t seq = 0;
  std::string prev_hash;  // raw
  std::string hash;       // raw
};

class Checker {
 public:
  Checker(VerifySummary* summary, std::string genesis, int64_t expected_first_seq)
      : s_(summary), genesis_(std::move(genesis)), expected_first_seq_(expected_first_seq) {}

  void Problem(std::string text) {
    if (s_->problems.size() < kMaxProblems) s_->problems.push_back(std::move(text));
  }

  // The global walk over every sale of every object, in object order.
  void Feed(const SaleLink& link, const std::string& where) {
    ++s_->sales;
    if (!started_) {
      started_ = true;
      s_->first_seq = link.seq;
      s_->last_seq = link.seq;
      // Objects are never deleted by the hub, so the first one must hold seq 1 (or the
      // seq the operator says the store's history starts at): a missing leading object
      // is a gap like any other.
      if (expected_first_seq_ > 0 && link.seq > expected_first_seq_) {
        s_->gaps += link.seq - expected_first_seq_;
        Problem(where + ": seqs " + std::to_string(expected_first_seq_) + ".." +
                std::to_string(link.seq - 1) + " are missing before the first object");
      }
      if (link.seq == 1 && link.prev_hash != genesis_) {
        ++s_->chain_breaks;
        Problem(where + ": seq 1 does not start from the store's genesis hash");
      }
      next_ = link.seq + 1;
      last_hash_ = link.hash;
      return;
    }
    if (link.seq < next_) {
      ++s_->duplicates;
      Problem(where + ": seq " + std::to_string(link.seq) + " seen again");
      return;
    }
    if (link.seq > next_) {
      s_->gaps += link.seq - next_;
      Problem(where + ": seqs " + std::to_string(next_) + ".." + std::to_string(link.seq - 1) +
              " are missing");
    } else if (link.prev_hash != last_hash_) {
      ++s_->chain_breaks;
      Problem(where + ": seq " + std::to_string(link.seq) +
              " does not link to the previous sale's hash");
    }
    next_ = link.seq + 1;
    last_hash_ = link.hash;
    s_->last_seq = std::max(s_->last_seq, link.seq);
  }

 private:
  VerifySummary* s_;
  std::string genesis_;
  int64_t expected_first_seq_ = 1;
  bool started_ = false;
  int64_t next_ = 0;
  std::string last_hash_;
};

// Recomputes each Z report's figures from the entries before it (JSONL objects only): the
// entries since the previous Z report are kept (at most max_entries), and a z_report line
// whose range first_seq..last_seq they cover completely is checked with
// core::ComputeReport in the currency of its figures. A range not covered (a gap, CSV
// objects, a history that starts later, a day over the limit) is counted unchecked.
class ZCheck {
 public:
  ZCheck(VerifySummary* summary, Checker* checker, size_t max_entries)
      : s_(summary), checker_(checker), max_entries_(max_entries) {}

  void Feed(core::JournalEntry entry, const std::string& where) {
    if (next_ != 0 && entry.seq < next_) return;  // a duplicate (counted by the walk)
    next_ = entry.seq + 1;
    const core::StoreEvent* event = entry.event();
    if (event == nullptr || event->type != core::EventType::kZReport) {
      if (entries_.size() >= max_entries_) entries_.clear();  // that Z stays unchecked
      entries_.push_back(std::move(entry));
      return;
    }
    Check(*event, entry.seq, where);
    entries_.clear();
  }

  // A line that did not decode, or a CSV row: whatever Z report comes next cannot be
  // recomputed over it.
  void Unknown(int64_t seq) {
    if (next_ != 0 && seq < next_) return;
    next_ = seq + 1;
    entries_.clear();
  }

 private:
  void Check(const core::StoreEvent& z, int64_t seq, const std::string& where) {
    std::vector<core::JournalEntry> covered;
    for (const core::JournalEntry& e : entries_) {
      if (e.seq >= z.first_seq && e.seq <= z.last_seq) covered.push_back(e);
    }
    const int64_t wanted = z.last_seq >= z.first_seq ? z.last_seq - z.first_seq + 1 : 0;
    // Entries are kept in increasing seq order without duplicates, so the count decides
    // (an entry dropped by a gap, an undecodable line or the limit is missing from it).
    if (static_cast<int64_t>(covered.size()) != wanted) {
      ++s_->z_reports_unchecked;
      return;
    }
    const nlohmann::json figures = nlohmann::json::parse(z.figures, nullptr, false);
    std::string currency = z.currency;
    if (figures.is_object() && figures.contains("currency") && figures["currency"].is_string()) {
      currency = figures["currency"].get<std::string>();
    }
    Result<core::ReportFigures> recomputed = core::ComputeReport(covered, currency);
    ++s_->z_reports_checked;
    if (!recomputed.ok() || core::ReportFiguresJson(*recomputed) != z.figures) {
      ++s_->z_mismatches;
      checker_->Problem(where + ": Z report " + std::to_string(z.z_number) + " (seq " +
                        std::to_string(seq) +
                        ") does not have the figures of the entries it covers");
    }
  }

  VerifySummary* s_;
  Checker* checker_;
  size_t max_entries_;
  std::vector<core::JournalEntry> entries_;  // since the last Z report, in seq order
  int64_t next_ = 0;
};

// ---- JSON Lines ----

// The request fields of a stored sale's JSON (StoredSaleJson): what the terminal sent,
// which core::DecodeSale turns back into the canonical bytes.
json RequestOf(const json& line) {
  json req = json::object();
  for (const char* key :
       {"id", "terminal_id", "type", "ref", "created_at", "currency", "cashier"}) {
    if (line.contains(key)) req[key] = line[key];
  }
  json lines = json::array();
  for (const json& l : line.at("lines")) {
    json out = json::object();
    for (const char* key : {"sku", "name", "qty", "unit_price", "discount", "tax_rate"}) {
      if (l.contains(key)) out[key] = l[key];
    }
    lines.push_back(std::move(out));
  }
  req["lines"] = std::move(lines);
  json payments = json::array();
  for (const json& p : line.at("payments")) {
    json out = json::object();
    for (const char* key :
         {"method", "amount", "card_token", "last4", "brand", "auth_code", "offline"}) {
      if (p.contains(key)) out[key] = p[key];
    }
    payments.push_back(std::move(out));
  }
  req["payments"] = std::move(payments);
  return req;
}

// The canonical bytes of a store event's JSONL line (core::StoredEventJson): the line's
// members in their order, minus those the journal adds.
Result<std::string> EventCanonicalOf(std::string_view text) {
  using OJson = nlohmann::ordered_json;
  OJson line = OJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!line.is_object()) return Status(ErrorCode::kInvalidArgument, "not a JSON object");
  for (const char* key : {"seq", "receipt_no", "received_at", "clock_skew", "clock_untrusted",
                          "hash", "prev_hash", "uploaded"}) {
    line.erase(key);
  }
  return line.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

// Parses and checks one JSONL line; nullopt (with a problem counted) when unusable.
// When the line decodes (whatever its hash), *entry gets the entry for the Z check.
std::optional<SaleLink> CheckJsonLine(std::string_view text, const std::string& where,
                                      VerifySummary* s, Checker* checker,
                                      int64_t* first_received_at_ms,
                                      std::optional<core::JournalEntry>* entry) {
  SaleLink link;
  try {
    json line = json::parse(text);
    link.seq = line.at("seq").get<int64_t>();
    // A malformed hex string leaves the hash empty, which the size check below reports.
    link.hash = core::FromHex(line.at("hash").get<std::string>()).value_or("");
    link.prev_hash = core::FromHex(line.at("prev_hash").get<std::string>()).value_or("");
    const std::string receipt_no = line.at("receipt_no").get<std::string>();
    Result<int64_t> received = core::ParseRfc3339(line.at("received_at").get<std::string>());
    // The clock flags of the chain record: clock_untrusted appears only when set.
    const int skew = (line.at("clock_skew").get<bool>() ? core::kClockSkew : 0) |
                     (line.value("clock_untrusted", false) ? core::kClockUntrusted : 0);
    if (!received.ok() || link.hash.size() != 32 || link.prev_hash.size() != 32) {
      ++s->bad_objects;
      checker->Problem(where + ": a line has a malformed received_at or hash");
      return std::nullopt;
    }
    if (*first_received_at_ms == INT64_MIN) *first_received_at_ms = *received;
    const json* type = line.contains("type") ? &line["type"] : nullptr;
    if (type != nullptr && type->is_string() &&
        core::IsEventTypeName(type->get_ref<const std::string&>())) {
      ++s->events;
      // A store event: its canonical bytes are the line's members without the journal's
      // own (seq, receipt_no, received_at, clock_skew, clock_untrusted, hash, prev_hash), in the
      // line's order. DecodeCanonicalEvent accepts exactly the canonical form, so an edited amount,
      // reason or Z figure decodes (or not) to other bytes and the hash differs.
      Result<std::string> canonical = EventCanonicalOf(text);
      Result<core::StoreEvent> event = canonical.ok()
                                           ? core::DecodeCanonicalEvent(*canonical)
                                           : Result<core::StoreEvent>(canonical.status());
      if (!event.ok()) {
        ++s->hash_mismatches;
        checker->Problem(where + ": seq " + std::to_string(link.seq) +
                         " does not decode as a store event: " + event.status().message());
        return link;
      }
      const std::string record = core::CanonicalRecord(link.seq, receipt_no, *received, skew,
                                                       core::CanonicalEvent(*event));
      *entry = core::JournalEntry{link.seq, receipt_no, *received, *event};
      if (core::ChainHash(link.prev_hash, record) != link.hash) {
        ++s->hash_mismatches;
        checker->Problem(where + ": seq " + std::to_string(link.seq) +
                         " hash does not match its content");
      }
      return link;
    }
    Result<core::Sale> sale = core::DecodeSale(RequestOf(line).dump());
    if (!sale.ok()) {
      ++s->hash_mismatches;
      checker->Problem(where + ": seq " + std::to_string(link.seq) +
                       " does not decode as a sale: " + sale.status().message());
      return link;
    }
    const std::string record =
        core::CanonicalRecord(link.seq, receipt_no, *received, skew, core::CanonicalSale(*sale));
    *entry = core::JournalEntry{link.seq, receipt_no, *received, *sale};
    if (core::ChainHash(link.prev_hash, record) != link.hash) {
      ++s->hash_mismatches;
      checker->Problem(where + ": seq " + std::to_string(link.seq) +
                       " hash does not match its content");
    }
    return link;
  } catch (const std::exception&) {
    ++s->bad_objects;
    checker->Problem(where + ": a line is not a stored sale's JSON");
    return std::nullopt;
  }
}

// ---- CSV (RFC 4180) ----

// Splits the next row off `text` at *pos; false at the end. Quoted fields may hold
// commas, quotes ("") and line breaks.
bool NextCsvRow(std::string_view text, size_t* pos, std::vector<std::string>* row, bool* bad) {
  row->clear();
  if (*pos >= text.size()) return false;
  std::string field;
  bool quoted = false;
  bool was_quoted = false;
  size_t i = *pos;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field.push_back(c);
      }
    } else if (c == '"' && field.empty() && !was_quoted) {
      quoted = true;
      was_quoted = true;
    } else if (c == ',') {
      row->push_back(std::move(field));
      field.clear();
      was_quoted = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++i;
      break;
    } else {
      field.push_back(c);
    }
  }
  if (quoted) *bad = true;
  row->push_back(std::move(field));
  *pos = i;
  return true;
}

std::vector<std::string> CsvColumns() {
  std::vector<std::string> columns;
  size_t pos = 0;
  bool bad = false;
  NextCsvRow(CsvHeader(), &pos, &columns, &bad);
  return columns;
}

}  // namespace

std::string VerifySummary::ToJson() const {
  json j;
  j["ok"] = ok();
  j["objects"] = objects;
  j["sales"] = sales;
  j["events"] = events;
  j["first_seq"] = first_seq;
  j["last_seq"] = last_seq;
  j["gaps"] = gaps;
  j["duplicates"] = duplicates;
  j["chain_breaks"] = chain_breaks;
  j["hash_mismatches"] = hash_mismatches;
  j["bad_objects"] = bad_objects;
  j["z_reports_checked"] = z_reports_checked;
  j["z_reports_unchecked"] = z_reports_unchecked;
  j["z_mismatches"] = z_mismatches;
  j["problems"] = problems;
  return j.dump();
}

Result<VerifySummary> VerifyStore(cloud::ObjectStore& store, const VerifyOptions& options) {
  VerifySummary summary;
  Checker checker(&summary, core::GenesisHash(options.store_id), options.expected_first_seq);
  ZCheck z_check(&summary, &checker, options.max_z_entries);
  const std::string prefix = SalesPrefix(options.prefix, options.store_id);

  struct Entry {
    std::string key;
    ParsedKey parsed;
    int64_t size = 0;
  };
  std::vector<Entry> entries;
  std::string token;
  do {
    ASSIGN_OR_RETURN(cloud::ListResult page, store.List(prefix, token));
    for (auto& [key, info] : page.objects) {
      Entry e;
      e.key = key;
      e.size = info.size;
      if (!ParseBatchKey(key, &e.parsed) || e.parsed.store_id != options.store_id) {
        ++summary.objects;
        ++summary.bad_objects;
        checker.Problem(key + ": not a batch object of store " + options.store_id);
        continue;
      }
      entries.push_back(std::move(e));
    }
    token = page.next_token;
  } while (!token.empty());
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.parsed.first_seq, a.parsed.last_seq, a.key) <
           std::tie(b.parsed.first_seq, b.parsed.last_seq, b.key);
  });
  const int64_t total = summary.objects + static_cast<int64_t>(entries.size());
  static const std::vector<std::string> kColumns = CsvColumns();
  auto column = [](std::string_view name) {
    return static_cast<size_t>(std::find(kColumns.begin(), kColumns.end(), name) -
                               kColumns.begin());
  };
  static const size_t kSeqCol = column("seq");
  static const size_t kHashCol = column("hash");
  static const size_t kPrevCol = column("prev_hash");
  static const size_t kTypeCol = column("type");
  // Objects written before clock_untrusted (the last column) existed have the header
  // without it; the columns before it are the same.
  static const std::vector<std::string> kColumnsBeforeClockFlag(kColumns.begin(),
                                                                kColumns.end() - 1);

  for (const Entry& e : entries) {
    ++summary.objects;
    const std::string& where = e.key;
    auto report = [&] {
      if (options.progress) options.progress(summary.objects, total);
    };
    if (e.size > static_cast<int64_t>(options.max_object_bytes)) {
      ++summary.bad_objects;
      checker.Problem(where + ": larger than the verification limit");
      report();
      continue;
    }
    ASSIGN_OR_RETURN(cloud::ObjectInfo info, store.Head(e.key));
    ASSIGN_OR_RETURN(cloud::GetResult got, store.Get(e.key));
    const std::string& bytes = got.body;
    const std::string sha = Sha256Hex(bytes);
    auto meta = [&](const char* name) -> std::string {
      auto it = info.metadata.find(name);
      return it == info.metadata.end() ? std::string() : it->second;
    };
    if (meta("sha256") != sha) {
      ++summary.hash_mismatches;
      checker.Problem(where + (meta("sha256").empty()
                                   ? ": no sha256 metadata"
                                   : ": sha256 metadata differs from the bytes"));
    }
    if (!info.etag.empty() && info.etag.find('-') == std::string::npos &&
        info.etag != Md5Hex(bytes)) {
      ++summary.hash_mismatches;
      checker.Problem(where + ": ETag differs from the MD5 of the bytes");
    }
    Result<std::string> raw = Gunzip(bytes);
    if (!raw.ok()) {
      ++summary.bad_objects;
      checker.Problem(where + ": " + raw.status().message());
      report();
      continue;
    }
    std::vector<SaleLink> links;
    std::vector<core::JournalEntry> decoded;  // JSONL: decoded, one per link
    std::vector<int64_t> unknown;             // seqs of links that did not decode
    int64_t first_received_at_ms = INT64_MIN;
    std::string_view text = *raw;
    if (e.parsed.format == BatchFormat::kJsonl) {
      size_t start = 0;
      while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(start, end - start);
        start = end + 1;
        if (line.empty()) continue;
        std::optional<core::JournalEntry> entry;
        std::optional<SaleLink> link =
            CheckJsonLine(line, where, &summary, &checker, &first_received_at_ms, &entry);
        if (link) {
          if (entry) {
            decoded.push_back(std::move(*entry));
          } else {
            decoded.push_back(core::JournalEntry{link->seq, "", 0, core::Sale{}});
            unknown.push_back(link->seq);
          }
          links.push_back(std::move(*link));
        }
      }
    } else {
      size_t pos = 0;
      bool bad = false;
      std::vector<std::string> row;
      if (!NextCsvRow(text, &pos, &row, &bad) ||
          (row != kColumns && row != kColumnsBeforeClockFlag)) {
        ++summary.bad_objects;
        checker.Problem(where + ": the CSV header differs from the format's");
        report();
        continue;
      }
      const size_t width = row.size();
      while (NextCsvRow(text, &pos, &row, &bad)) {
        if (row.size() != width) {
          bad = true;
          break;
        }
        SaleLink link;
        link.seq = std::strtoll(row[kSeqCol].c_str(), nullptr, 10);
        const bool event = core::IsEventTypeName(row[kTypeCol]);
        link.hash = core::FromHex(row[kHashCol]).value_or("");
        link.prev_hash = core::FromHex(row[kPrevCol]).value_or("");
        if (link.hash.size() != 32 || link.prev_hash.size() != 32) {
          bad = true;
          break;
        }
        // One row per line item: the rows of one sale repeat its seq and hashes.
        if (!links.empty() && links.back().seq == link.seq) {
          if (links.back().hash != link.hash || links.back().prev_hash != link.prev_hash)
            bad = true;
          continue;
        }
        if (event) ++summary.events;
        // CSV carries no figures: its Z reports cannot be recomputed.
        if (row[kTypeCol] == "z_report") ++summary.z_reports_unchecked;
        links.push_back(std::move(link));
      }
      if (bad) {
        ++summary.bad_objects;
        checker.Problem(where + ": malformed CSV rows");
      }
    }
    if (links.empty()) {
      ++summary.bad_objects;
      checker.Problem(where + ": holds no sale");
      report();
      continue;
    }
    // The object against its name and metadata.
    const SaleLink& first = links.front();
    const SaleLink& last = links.back();
    if (first.seq != e.parsed.first_seq || last.seq != e.parsed.last_seq ||
        static_cast<int64_t>(links.size()) != e.parsed.last_seq - e.parsed.first_seq + 1) {
      ++summary.hash_mismatches;
      checker.Problem(where + ": content does not hold exactly the seqs its name says");
    }
    if (meta("first-seq") != std::to_string(first.seq) ||
        meta("last-seq") != std::to_string(last.seq) ||
        meta("prev-hash") != core::ToHex(first.prev_hash) ||
        meta("first-hash") != core::ToHex(first.hash) ||
        meta("last-hash") != core::ToHex(last.hash)) {
      ++summary.hash_mismatches;
      checker.Problem(where + ": seq or hash metadata differs from the content");
    }
    if (first_received_at_ms != INT64_MIN && !e.parsed.date.empty() &&
        UtcDate(first_received_at_ms) != e.parsed.date) {
      ++summary.hash_mismatches;
      checker.Problem(where + ": date partition is not the first sale's date");
    }
    for (const SaleLink& link : links) checker.Feed(link, where);
    if (decoded.size() == links.size()) {
      for (core::JournalEntry& entry : decoded) {
        if (std::find(unknown.begin(), unknown.end(), entry.seq) != unknown.end()) {
          z_check.Unknown(entry.seq);
        } else {
          z_check.Feed(std::move(entry), where);
        }
      }
    } else {
      for (const SaleLink& link : links) z_check.Unknown(link.seq);
    }
    report();
  }
  return summary;
}

}  // namespace machub::sync
