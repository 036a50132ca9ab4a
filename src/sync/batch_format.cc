#include "sync/batch_format.h"

#include <openssl/evp.h>
#include <zlib.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <utility>

#include "core/currency.h"
#include "core/money.h"
#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/time_format.h"

namespace machub::sync {
namespace {

constexpr int64_t kMsPerDay = 86'400'000;
constexpr size_t kOutChunk = 64 * 1024;
constexpr size_t kInChunk = 64 * 1024;  // BatchEncoder stages this much input per deflate

constexpr std::string_view kCsvHeader =
    "store_id,seq,sale_id,receipt_no,terminal_id,type,ref,created_at,received_at,clock_skew,"
    "currency,cashier,line_no,sku,name,qty,unit_price,discount,tax_rate,line_net,line_tax,"
    "sale_subtotal,sale_tax,sale_total,sale_paid,sale_change,payment_methods,hash,prev_hash,"
    "clock_untrusted";

// StoredSaleJson ends with this member; the object leaves it out (see the header).
constexpr std::string_view kUploadedSuffix = ",\"uploaded\":false}";

std::string TrimSlashes(std::string_view prefix) {
  while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  return std::string(prefix);
}

// A text cell a spreadsheet would run as a formula: one starting with '=', '+', '-', '@',
// a tab or a CR (docs/S3_FORMAT.md, "Formula cells").
bool LooksLikeFormula(std::string_view field) {
  if (field.empty()) return false;
  switch (field.front()) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '\t':
    case '\r':
      return true;
    default:
      return false;
  }
}

// RFC 4180: a field with a comma, quote, CR or LF is quoted, its quotes doubled. Every
// caller passes a TEXT cell (ids, names, skus, cashier, methods): one that looks like a
// formula is written quoted with a leading apostrophe ("'=1+1"), which spreadsheets show
// as text. Numeric cells are written by AppendInt / AppendDecimal and never pass here.
void AppendCsvField(std::string* out, std::string_view field) {
  const bool formula = LooksLikeFormula(field);
  if (!formula && field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out->append(field);
    return;
  }
  out->push_back('"');
  if (formula) out->push_back('\'');
  for (char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendInt(std::string* out, int64_t value) {
  char buf[24];
  int n = std::snprintf(buf, sizeof(buf), "%" PRId64, value);
  out->append(buf, static_cast<size_t>(n));
}

void AppendJsonl(std::string* out, const core::StoredSale& sale) {
  std::string json;
  if (sale.uploaded) {
    // The object's bytes must not depend on upload bookkeeping.
    core::StoredSale copy = sale;
    copy.uploaded = false;
    json = core::StoredSaleJson(copy);
  } else {
    json = core::StoredSaleJson(sale);
  }
  std::string_view view(json);
  if (view.size() >= kUploadedSuffix.size() &&
      view.substr(view.size() - kUploadedSuffix.size()) == kUploadedSuffix) {
    view.remove_suffix(kUploadedSuffix.size());
    out->append(view);
    out->push_back('}');
  } else {
    out->append(view);  // a future core without the member: keep whatever it wrote
  }
  out->push_back('\n');
}

// A store event (drawer_open, cash_in, cash_out, drawer_close, z_report,
// payment_authorization) is one row with the sale's columns where they mean the same
// (ids, times, currency, cashier, hashes), its amount in sale_total (the float, the amount
// paid in or out, the counted cash, the authorized payment's amount; a z_report has
// none), its reason in `name`; a payment_authorization also has its sale's id in `ref`
// and "<payment index>:<result>" in payment_methods; every other column is empty
// (docs/S3_FORMAT.md, "Store events in CSV"). Text cells go through
// AppendCsvField like a sale's, so a formula-looking reason is neutralised the same way.
void AppendCsvEvent(std::string* out, std::string_view store_id, const core::StoredSale& stored) {
  const core::StoreEvent& event = *stored.event;
  const core::Currency* currency = core::FindCurrency(event.currency);
  const int minor = currency != nullptr ? currency->minor_units : 2;
  AppendCsvField(out, store_id);
  out->push_back(',');
  AppendInt(out, stored.seq);
  out->push_back(',');
  AppendCsvField(out, event.id);
  out->push_back(',');
  AppendCsvField(out, stored.receipt_no);
  out->push_back(',');
  AppendCsvField(out, event.terminal_id);
  out->push_back(',');
  out->append(core::EventTypeName(event.type));
  out->push_back(',');
  AppendCsvField(out, event.sale_id);  // ref: the sale a payment_authorization answers
  out->push_back(',');
  out->append(core::FormatRfc3339(event.created_at_ms));
  out->push_back(',');
  out->append(core::FormatRfc3339(stored.received_at_ms));
  out->push_back(',');
  out->append(stored.clock_skew ? "true" : "false");
  out->push_back(',');
  AppendCsvField(out, event.currency);
  out->push_back(',');
  AppendCsvField(out, event.cashier);
  out->append(",,,");                 // cashier's comma, line_no, sku
  AppendCsvField(out, event.reason);  // name: the reason (cash_in / cash_out), else empty
  // qty, unit_price, discount, tax_rate, line_net, line_tax, sale_subtotal, sale_tax:
  out->append(",,,,,,,,,");
  if (event.type != core::EventType::kZReport) core::AppendDecimal(out, event.amount, minor);
  out->append(",,,");  // sale_paid, sale_change
  if (event.type == core::EventType::kPaymentAuthorization) {
    // payment_methods: which payment of the sale, and the processor's answer.
    std::string answer;
    AppendInt(&answer, event.payment_index);
    answer.push_back(':');
    answer.append(event.result);
    AppendCsvField(out, answer);
  }
  out->push_back(',');
  out->append(core::ToHex(stored.hash));
  out->push_back(',');
  out->append(core::ToHex(stored.prev_hash));
  out->append(stored.clock_untrusted ? ",true\n" : ",false\n");
}

void AppendCsv(std::string* out, std::string_view store_id, const core::StoredSale& stored) {
  if (stored.is_event()) {
    AppendCsvEvent(out, store_id, stored);
    return;
  }
  const core::Sale& sale = stored.sale;
  const core::Currency* currency = core::FindCurrency(sale.currency);
  const int minor = currency != nullptr ? currency->minor_units : 2;
  // The sale-level columns are the same on every row of the sale: build them once.
  std::string head;
  AppendCsvField(&head, store_id);
  head.push_back(',');
  AppendInt(&head, stored.seq);
  head.push_back(',');
  AppendCsvField(&head, sale.id);
  head.push_back(',');
  AppendCsvField(&head, stored.receipt_no);
  head.push_back(',');
  AppendCsvField(&head, sale.terminal_id);
  head.push_back(',');
  head.append(core::SaleTypeName(sale.type));
  head.push_back(',');
  AppendCsvField(&head, sale.ref);
  head.push_back(',');
  head.append(core::FormatRfc3339(sale.created_at_ms));
  head.push_back(',');
  head.append(core::FormatRfc3339(stored.received_at_ms));
  head.push_back(',');
  head.append(stored.clock_skew ? "true" : "false");
  head.push_back(',');
  AppendCsvField(&head, sale.currency);
  head.push_back(',');
  AppendCsvField(&head, sale.cashier);
  head.push_back(',');

  std::string tail = ",";
  core::AppendDecimal(&tail, sale.subtotal, minor);
  tail.push_back(',');
  core::AppendDecimal(&tail, sale.tax_total, minor);
  tail.push_back(',');
  core::AppendDecimal(&tail, sale.total, minor);
  tail.push_back(',');
  core::AppendDecimal(&tail, sale.paid, minor);
  tail.push_back(',');
  core::AppendDecimal(&tail, sale.change, minor);
  tail.push_back(',');
  std::string methods;
  for (const core::Payment& payment : sale.payments) {
    if (!methods.empty()) methods.push_back(';');
    methods.append(payment.method);
    methods.push_back(':');
    core::AppendDecimal(&methods, payment.amount, minor);
  }
  AppendCsvField(&tail, methods);
  tail.push_back(',');
  tail.append(core::ToHex(stored.hash));
  tail.push_back(',');
  tail.append(core::ToHex(stored.prev_hash));
  tail.append(stored.clock_untrusted ? ",true\n" : ",false\n");

  int64_t line_no = 0;
  for (const core::Line& line : sale.lines) {
    out->append(head);
    AppendInt(out, ++line_no);
    out->push_back(',');
    AppendCsvField(out, line.sku);
    out->push_back(',');
    AppendCsvField(out, line.name);
    out->push_back(',');
    core::AppendDecimal(out, line.qty_milli, 3, true);
    out->push_back(',');
    core::AppendDecimal(out, line.unit_price, minor);
    out->push_back(',');
    core::AppendDecimal(out, line.discount, minor);
    out->push_back(',');
    core::AppendDecimal(out, line.tax_rate_micro, 6, true);
    out->push_back(',');
    core::AppendDecimal(out, line.net, minor);
    out->push_back(',');
    core::AppendDecimal(out, line.tax, minor);
    out->append(tail);
  }
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::string_view FormatExtension(BatchFormat format) {
  return format == BatchFormat::kCsv ? "csv" : "jsonl";
}

Result<BatchFormat> ParseBatchFormat(std::string_view text) {
  if (text == "jsonl") return BatchFormat::kJsonl;
  if (text == "csv") return BatchFormat::kCsv;
  return Status(ErrorCode::kInvalidArgument, "batch format must be \"jsonl\" or \"csv\"");
}

int64_t UtcDay(int64_t ms) {
  int64_t day = ms / kMsPerDay;
  if (ms % kMsPerDay < 0) --day;  // floor for times before 1970
  return day;
}

std::string UtcDate(int64_t ms) {
  return core::FormatRfc3339(UtcDay(ms) * kMsPerDay).substr(0, 10);
}

std::string SalesPrefix(std::string_view prefix, std::string_view store_id) {
  std::string trimmed = TrimSlashes(prefix);
  std::string out = trimmed.empty() ? std::string() : trimmed + "/";
  out += "sales/store=";
  out += store_id;
  out += "/";
  return out;
}

std::string BatchKey(std::string_view prefix, std::string_view store_id, int64_t first_seq,
                     int64_t last_seq, int64_t first_received_at_ms, BatchFormat format) {
  char seqs[64];
  std::snprintf(seqs, sizeof(seqs), "-%012" PRId64 "-%012" PRId64 ".", first_seq, last_seq);
  std::string key = SalesPrefix(prefix, store_id);
  key += "date=";
  key += UtcDate(first_received_at_ms);
  key += "/";
  key += store_id;
  key += seqs;
  key += FormatExtension(format);
  key += ".gz";
  return key;
}

bool ParseBatchKey(std::string_view key, ParsedKey* out) {
  ParsedKey parsed;
  size_t slash = key.rfind('/');
  std::string_view name = slash == std::string_view::npos ? key : key.substr(slash + 1);
  if (slash != std::string_view::npos) {
    std::string_view folder = key.substr(0, slash);
    size_t up = folder.rfind('/');
    std::string_view segment = up == std::string_view::npos ? folder : folder.substr(up + 1);
    if (segment.starts_with("date=")) parsed.date = std::string(segment.substr(5));
  }
  if (!name.ends_with(".gz")) return false;
  name.remove_suffix(3);
  if (name.ends_with(".jsonl")) {
    parsed.format = BatchFormat::kJsonl;
    name.remove_suffix(6);
  } else if (name.ends_with(".csv")) {
    parsed.format = BatchFormat::kCsv;
    name.remove_suffix(4);
  } else {
    return false;
  }
  // <store>-<12 digits>-<12 digits>; the store id may itself contain '-'.
  if (name.size() < 27) return false;
  std::string_view last = name.substr(name.size() - 12);
  std::string_view first = name.substr(name.size() - 25, 12);
  if (name[name.size() - 13] != '-' || name[name.size() - 26] != '-' || !AllDigits(first) ||
      !AllDigits(last)) {
    return false;
  }
  parsed.store_id = std::string(name.substr(0, name.size() - 26));
  if (parsed.store_id.empty()) return false;
  parsed.first_seq = std::strtoll(std::string(first).c_str(), nullptr, 10);
  parsed.last_seq = std::strtoll(std::string(last).c_str(), nullptr, 10);
  *out = std::move(parsed);
  return true;
}

std::string_view CsvHeader() { return kCsvHeader; }

void AppendSaleRecord(std::string* out, BatchFormat format, std::string_view store_id,
                      const core::StoredSale& sale) {
  if (format == BatchFormat::kCsv) {
    AppendCsv(out, store_id, sale);
  } else {
    AppendJsonl(out, sale);
  }
}

std::string EncodeBatch(std::string_view store_id, const std::vector<core::StoredSale>& sales,
                        BatchFormat format) {
  std::string out;
  if (format == BatchFormat::kCsv) {
    out.append(kCsvHeader);
    out.push_back('\n');
  }
  for (const core::StoredSale& sale : sales) AppendSaleRecord(&out, format, store_id, sale);
  return out;
}

// ---- BatchEncoder ----

struct BatchEncoder::Deflate {
  z_stream strm{};
  gz_header header{};
  bool initialized = false;
  ~Deflate() {
    if (initialized) deflateEnd(&strm);
  }
};

BatchEncoder::BatchEncoder(BatchFormat format, std::string store_id)
    : format_(format), store_id_(std::move(store_id)), deflate_(std::make_unique<Deflate>()) {}

BatchEncoder::~BatchEncoder() = default;

Result<std::unique_ptr<BatchEncoder>> BatchEncoder::Create(BatchFormat format, std::string store_id,
                                                           int level) {
  if (level < 1 || level > 9) {
    return Status(ErrorCode::kInvalidArgument, "gzip level must be 1..9");
  }
  std::unique_ptr<BatchEncoder> encoder(new BatchEncoder(format, std::move(store_id)));
  Deflate& d = *encoder->deflate_;
  // windowBits 15 + 16: a gzip wrapper. memLevel 8 and the default strategy are zlib's
  // defaults; all of them are part of what makes the bytes reproducible.
  if (deflateInit2(&d.strm, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status(ErrorCode::kInternal, "gzip: deflateInit2 failed");
  }
  d.initialized = true;
  // Without a header zlib writes mtime 0 and OS 3 (Unix, from the build host); a fixed
  // 255 ("unknown") keeps the bytes the same wherever machub was built.
  d.header.text = 0;
  d.header.time = 0;
  d.header.os = 255;
  d.header.extra = Z_NULL;
  d.header.name = Z_NULL;
  d.header.comment = Z_NULL;
  d.header.hcrc = 0;
  if (deflateSetHeader(&d.strm, &d.header) != Z_OK) {
    return Status(ErrorCode::kInternal, "gzip: deflateSetHeader failed");
  }
  if (format == BatchFormat::kCsv) {
    std::string header(kCsvHeader);
    header.push_back('\n');
    RETURN_IF_ERROR(encoder->Write(header));
  }
  return encoder;
}

Status BatchEncoder::Write(std::string_view data) {
  if (finished_) return Status(ErrorCode::kInternal, "gzip: encoder already finished");
  raw_bytes_ += static_cast<int64_t>(data.size());
  // Records are small (about 1 KB); deflate is fed in steps of kInChunk, which costs
  // fewer calls and output-buffer round trips per byte. The bytes do not change (zlib's
  // output does not depend on how its input is split).
  if (staged_.size() + data.size() <= kInChunk) {
    staged_.append(data);
    return Status::Ok();
  }
  RETURN_IF_ERROR(Compress(staged_, Z_NO_FLUSH));
  staged_.clear();
  if (data.size() >= kInChunk) return Compress(data, Z_NO_FLUSH);
  staged_.append(data);
  return Status::Ok();
}

void BatchEncoder::ReserveFor(int64_t raw_bytes) {
  if (raw_bytes <= 0 || finished_) return;
  const uLong bound = deflateBound(&deflate_->strm, static_cast<uLong>(raw_bytes));
  out_.reserve(out_.size() + static_cast<size_t>(bound));
}

Status BatchEncoder::Compress(std::string_view data, int flush) {
  z_stream& s = deflate_->strm;
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  s.avail_in = static_cast<uInt>(data.size());
  if (chunk_.empty()) chunk_.resize(kOutChunk);
  for (;;) {
    s.next_out = reinterpret_cast<Bytef*>(chunk_.data());
    s.avail_out = static_cast<uInt>(chunk_.size());
    const int rc = deflate(&s, flush);
    out_.append(chunk_.data(), chunk_.size() - s.avail_out);
    if (rc == Z_STREAM_END) return Status::Ok();
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return Status(ErrorCode::kInternal, "gzip: deflate failed");
    }
    // Without a flush, deflate may keep output back: done once all input is taken.
    if (flush == Z_NO_FLUSH && s.avail_in == 0) return Status::Ok();
  }
}

void BatchEncoder::EncodeRecord(const core::StoredSale& sale, std::string* record) const {
  record->clear();
  AppendSaleRecord(record, format_, store_id_, sale);
}

Status BatchEncoder::AddRecord(std::string_view record) { return Write(record); }

Status BatchEncoder::Add(const core::StoredSale& sale) {
  std::string record;
  EncodeRecord(sale, &record);
  return Write(record);
}

Result<EncodedObject> BatchEncoder::Finish() {
  if (finished_) return Status(ErrorCode::kInternal, "gzip: encoder already finished");
  finished_ = true;
  RETURN_IF_ERROR(Compress(staged_, Z_FINISH));
  staged_.clear();
  staged_.shrink_to_fit();
  chunk_.clear();
  chunk_.shrink_to_fit();
  EncodedObject object;
  // Not shrunk to fit: that would copy the object (twice its size resident for a moment);
  // the capacity beyond it was never written, so never resident.
  object.bytes = std::move(out_);
  object.raw_bytes = raw_bytes_;
  object.sha256_hex = Sha256Hex(object.bytes);
  object.md5_hex = Md5Hex(object.bytes);
  return object;
}

Result<std::string> GzipDeterministic(std::string_view data, int level) {
  // The same code path as the streaming encoder (JSONL: no header row), so one-shot and
  // streamed bytes can only differ if zlib's output depended on input boundaries.
  ASSIGN_OR_RETURN(std::unique_ptr<BatchEncoder> encoder,
                   BatchEncoder::Create(BatchFormat::kJsonl, "", level));
  RETURN_IF_ERROR(encoder->AddRecord(data));
  ASSIGN_OR_RETURN(EncodedObject object, encoder->Finish());
  return std::move(object.bytes);
}

Result<std::string> Gunzip(std::string_view data, size_t max_output) {
  z_stream s{};
  if (inflateInit2(&s, 15 + 16) != Z_OK) return Status(ErrorCode::kInternal, "gunzip: init failed");
  std::string out;
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  s.avail_in = static_cast<uInt>(data.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    const size_t before = out.size();
    if (before >= max_output) {
      inflateEnd(&s);
      return Status(ErrorCode::kInvalidArgument, "gunzip: output larger than the limit");
    }
    const size_t chunk = std::min(kOutChunk * 4, max_output - before);
    out.resize(before + chunk);
    s.next_out = reinterpret_cast<Bytef*>(out.data() + before);
    s.avail_out = static_cast<uInt>(chunk);
    rc = inflate(&s, Z_NO_FLUSH);
    out.resize(before + chunk - s.avail_out);
    if (rc == Z_BUF_ERROR && s.avail_in == 0) {
      inflateEnd(&s);
      return Status(ErrorCode::kInvalidArgument, "gunzip: truncated gzip data");
    }
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      inflateEnd(&s);
      return Status(ErrorCode::kInvalidArgument, "gunzip: corrupt gzip data");
    }
  }
  const bool trailing = s.avail_in != 0;
  inflateEnd(&s);
  if (trailing) return Status(ErrorCode::kInvalidArgument, "gunzip: bytes after the gzip member");
  return out;
}

std::map<std::string, std::string> ObjectMetadata(std::string_view store_id, BatchFormat format,
                                                  int64_t first_seq, int64_t last_seq,
                                                  std::string_view prev_hash_hex,
                                                  std::string_view first_hash_hex,
                                                  std::string_view last_hash_hex,
                                                  std::string_view sha256_hex) {
  return {
      {"format-version", std::string(kFormatVersion)},
      {"format", std::string(FormatExtension(format))},
      {"store-id", std::string(store_id)},
      {"first-seq", std::to_string(first_seq)},
      {"last-seq", std::to_string(last_seq)},
      {"sales", std::to_string(last_seq - first_seq + 1)},
      {"prev-hash", std::string(prev_hash_hex)},
      {"first-hash", std::string(first_hash_hex)},
      {"last-hash", std::string(last_hash_hex)},
      {"sha256", std::string(sha256_hex)},
  };
}

}  // namespace machub::sync
