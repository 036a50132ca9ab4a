// Sync tests (sync_test_support.h has the fixtures): The batch objects: formats (goldens), the
// cutting rules, today's figures for the stores item.
#include "sync/sync_test_support.h"

namespace machub::sync {
namespace {

// ---- Batch format ----

TEST_F(SyncTest, SameRowsGiveTheSameBytesWhateverTheChunking) {
  AppendSales(30);
  std::vector<core::StoredSale> sales = AllSales();
  for (BatchFormat format : {BatchFormat::kJsonl, BatchFormat::kCsv}) {
    const std::string raw = EncodeBatch("S001", sales, format);
    Result<std::string> a = GzipDeterministic(raw, 6);
    Result<std::string> b = GzipDeterministic(raw, 6);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b);
    // Streaming one record at a time gives the same bytes as one shot.
    auto encoder = BatchEncoder::Create(format, "S001", 6);
    ASSERT_TRUE(encoder.ok());
    for (const auto& sale : sales) ASSERT_TRUE((*encoder)->Add(sale).ok());
    Result<EncodedObject> streamed = (*encoder)->Finish();
    ASSERT_TRUE(streamed.ok());
    EXPECT_EQ(streamed->bytes, *a);
    EXPECT_EQ(streamed->raw_bytes, static_cast<int64_t>(raw.size()));
    EXPECT_EQ(streamed->sha256_hex, core::ToHex(core::Sha256(*a)));
    EXPECT_EQ(streamed->md5_hex, Md5Hex(*a));
    // Fixed gzip header: magic, deflate, no flags, mtime 0, OS 255 ("unknown").
    ASSERT_GT(a->size(), 18u);
    EXPECT_EQ(static_cast<unsigned char>((*a)[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>((*a)[1]), 0x8b);
    EXPECT_EQ((*a)[3], 0);
    EXPECT_EQ(a->substr(4, 4), std::string(4, '\0'));
    EXPECT_EQ(static_cast<unsigned char>((*a)[9]), 255);
    Result<std::string> back = Gunzip(*a);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, raw);
    // Another level gives other (still deterministic) bytes.
    EXPECT_NE(*GzipDeterministic(raw, 1), *a);
    EXPECT_EQ(*GzipDeterministic(raw, 1), *GzipDeterministic(raw, 1));
  }
  EXPECT_FALSE(Gunzip("not gzip").ok());
  std::string truncated = *GzipDeterministic(std::string(10000, 'x'));
  truncated.resize(truncated.size() - 4);
  EXPECT_FALSE(Gunzip(truncated).ok());
  EXPECT_FALSE(Gunzip(*GzipDeterministic(std::string(10000, 'x')), 100).ok());
}

TEST_F(SyncTest, JsonLinesHoldFullStoredSalesWithoutUploadBookkeeping) {
  SaleSpec spec;
  spec.id = "card-sale";
  spec.card = true;
  ASSERT_TRUE(journal_->Append(MakeSale(spec)).get().ok());
  std::vector<core::StoredSale> sales = AllSales();
  ASSERT_EQ(sales.size(), 1u);
  const std::string raw = EncodeBatch("S001", sales, BatchFormat::kJsonl);
  ASSERT_EQ(raw.back(), '\n');
  json line = json::parse(raw);
  EXPECT_FALSE(line.contains("uploaded"));
  EXPECT_EQ(line["seq"], 1);
  EXPECT_EQ(line["id"], "card-sale");
  EXPECT_EQ(line["payments"][1]["card_token"], "tok_123");
  EXPECT_EQ(line["payments"][1]["last4"], "4242");
  EXPECT_EQ(line["hash"], core::ToHex(sales[0].hash));
  EXPECT_EQ(line["prev_hash"], core::ToHex(core::GenesisHash("S001")));
  // The same line whatever the row's upload flag.
  sales[0].uploaded = true;
  EXPECT_EQ(EncodeBatch("S001", sales, BatchFormat::kJsonl), raw);
  // Golden: StoredSaleJson minus "uploaded".
  sales[0].uploaded = false;
  std::string expected = core::StoredSaleJson(sales[0]);
  expected.replace(expected.size() - std::string(",\"uploaded\":false}").size(), std::string::npos,
                   "}");
  EXPECT_EQ(raw, expected + "\n");
}

// Rows read back from the journal are decoded by the stored-row reader
// (core::DecodeStoredCanonical), which skips the request checks. The objects must hold
// exactly what the full decoder gives, for every shape of sale the format allows.
TEST_F(SyncTest, StoredRowsEncodeExactlyAsWithTheFullDecoder) {
  std::vector<json> requests;
  json rich;
  rich["id"] = "rich:1";
  rich["terminal_id"] = "T-7";
  rich["created_at"] = "2026-11-27T10:15:00.123+01:00";
  rich["currency"] = "USD";
  rich["cashier"] = "Ann \"A\" O'Neil \\ \u00fc \u65e5\u672c";
  rich["lines"] = {{{"sku", "a,b"},
                    {"name", "Beans, \"dark\" \\ roast"},
                    {"qty", "2.5"},
                    {"unit_price", "3.49"},
                    {"discount", "0.50"},
                    {"tax_rate", "0.0825"}},
                   {{"sku", "x"}, {"qty", "0.001"}, {"unit_price", "1000.00"}, {"tax_rate", "0.2"}},
                   {{"sku", "y"}, {"name", ""}, {"qty", "3"}, {"unit_price", "0.10"}}};
  rich["payments"] = {{{"method", "cash"}, {"amount", "20.00"}},
                      {{"method", "card"},
                       {"amount", "5.00"},
                       {"card_token", "tok_9"},
                       {"last4", "4242"},
                       {"brand", "visa"},
                       {"auth_code", "A1"},
                       {"offline", true}},
                      {{"method", "gift_card"}, {"amount", "0.01"}, {"offline", false}}};
  requests.push_back(rich);
  json refund = {
      {"id", "refund.1"},
      {"terminal_id", "T-7"},
      {"type", "refund"},
      {"ref", "rich:1"},
      {"created_at", kDay1},
      {"currency", "USD"},
      {"lines",
       {{{"sku", "x"}, {"qty", "0.001"}, {"unit_price", "1000.00"}, {"tax_rate", "0.2"}}}}};
  requests.push_back(refund);
  json yen = {
      {"id", "yen"},
      {"terminal_id", "T1"},
      {"created_at", kDay1},
      {"currency", "JPY"},
      {"total", "378"},
      {"lines", {{{"sku", "s"}, {"qty", "1"}, {"unit_price", "350"}, {"tax_rate", "0.08"}}}},
      {"payments", {{{"method", "cash"}, {"amount", "1000"}}}}};
  requests.push_back(yen);
  json dinar = {{"id", "bhd"},
                {"terminal_id", "T1"},
                {"created_at", kDay1},
                {"currency", "BHD"},
                {"lines", {{{"sku", "s"}, {"qty", "1"}, {"unit_price", "1.250"}}}},
                {"payments", {{{"method", "cash"}, {"amount", "5.000"}}}}};
  requests.push_back(dinar);
  json free_sale = {{"id", "free"},
                    {"terminal_id", "T1"},
                    {"created_at", kDay1},
                    {"currency", "EUR"},
                    {"lines", {{{"sku", "gift"}, {"qty", "1"}, {"unit_price", "0.00"}}}}};
  requests.push_back(free_sale);
  json void_sale = {{"id", "void-1"},
                    {"terminal_id", "T1"},
                    {"type", "void"},
                    {"ref", "yen"},
                    {"created_at", kDay1},
                    {"currency", "JPY"},
                    {"lines", {{{"sku", "s"}, {"qty", "1"}, {"unit_price", "350"}}}},
                    {"payments", {{{"method", "cash"}, {"amount", "350"}}}}};
  requests.push_back(void_sale);
  for (const json& request : requests) {
    Result<core::Sale> sale = core::DecodeSale(request.dump());
    ASSERT_TRUE(sale.ok()) << sale.status().ToString() << " for " << request.dump();
    Result<journal::Receipt> r = journal_->Append(std::move(*sale)).get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  const std::vector<core::StoredSale> fast = AllSales();
  ASSERT_EQ(fast.size(), requests.size());
  std::vector<core::StoredSale> full = fast;
  for (core::StoredSale& stored : full) {
    core::Sale direct;
    // The reader takes these rows itself (no fallback to the full decoder)...
    EXPECT_TRUE(core::TryDecodeCanonicalLayout(stored.canonical, &direct)) << stored.canonical;
    Result<core::Sale> decoded = core::DecodeCanonical(stored.canonical);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    stored.sale = *decoded;
    // ...and gives the same sale, computed amounts included.
    core::StoredSale via_reader = stored;
    via_reader.sale = direct;
    EXPECT_EQ(core::StoredSaleJson(via_reader), core::StoredSaleJson(stored));
    EXPECT_EQ(core::CanonicalSale(direct), stored.canonical);
  }
  EXPECT_EQ(EncodeBatch("S001", fast, BatchFormat::kJsonl),
            EncodeBatch("S001", full, BatchFormat::kJsonl));
  EXPECT_EQ(EncodeBatch("S001", fast, BatchFormat::kCsv),
            EncodeBatch("S001", full, BatchFormat::kCsv));
  EXPECT_EQ(full[1].sale.ref, "rich:1");
  EXPECT_EQ(full[0].sale.payments[1].auth_code, "A1");

  // Bytes outside the exact layout are not the reader's: the full decoder answers.
  const std::string& canonical = fast[0].canonical;
  core::Sale unused;
  std::string spaced = canonical;
  spaced.insert(1, " ");
  EXPECT_FALSE(core::TryDecodeCanonicalLayout(spaced, &unused));
  Result<core::Sale> fallback = core::DecodeStoredCanonical(spaced);
  ASSERT_TRUE(fallback.ok()) << fallback.status().ToString();
  EXPECT_EQ(core::CanonicalSale(*fallback), canonical);
  std::string reordered = canonical;
  const size_t type_at = reordered.find(",\"type\":\"sale\"");
  ASSERT_NE(type_at, std::string::npos);
  reordered.erase(type_at, std::string(",\"type\":\"sale\"").size());
  reordered.insert(reordered.size() - 1, ",\"type\":\"sale\"");
  EXPECT_FALSE(core::TryDecodeCanonicalLayout(reordered, &unused));
  ASSERT_TRUE(core::DecodeStoredCanonical(reordered).ok());
  EXPECT_EQ(core::CanonicalSale(*core::DecodeStoredCanonical(reordered)), canonical);
  // Corruption is reported as such, by either path.
  EXPECT_FALSE(core::TryDecodeCanonicalLayout(canonical.substr(0, canonical.size() - 1), &unused));
  EXPECT_EQ(core::DecodeStoredCanonical(canonical.substr(0, canonical.size() - 1)).status().code(),
            ErrorCode::kInternal);
  // A sale that pays less than its total breaks a rule: not accepted by the reader either.
  std::string underpaid = canonical;
  const size_t card = underpaid.find("\"amount\":\"20.00\"");
  ASSERT_NE(card, std::string::npos);
  underpaid.replace(card, std::string("\"amount\":\"20.00\"").size(), "\"amount\":\"0.00\"");
  EXPECT_FALSE(core::TryDecodeCanonicalLayout(underpaid, &unused));
  EXPECT_EQ(core::DecodeStoredCanonical(underpaid).status().code(), ErrorCode::kInternal);
}

TEST_F(SyncTest, CsvRowsPerLineItemWithRfc4180Quoting) {
  SaleSpec spec;
  spec.id = "q1";
  spec.name = "Beans, \"dark\" roast";
  spec.lines = 2;
  spec.card = true;
  ASSERT_TRUE(journal_->Append(MakeSale(spec)).get().ok());
  std::vector<core::StoredSale> sales = AllSales();
  const std::string raw = EncodeBatch("S001", sales, BatchFormat::kCsv);
  const std::string hash = core::ToHex(sales[0].hash);
  const std::string prev = core::ToHex(sales[0].prev_hash);
  const std::string head =
      "S001,1,q1,T01-000001,T01,sale,,2026-11-27T10:15:00.000Z,2026-11-27T10:15:01.000Z,false,"
      "USD,,";
  const std::string tail =
      ",14.00,1.16,15.16,21.00,5.84,cash:20.00;card:1.00," + hash + "," + prev + ",false\n";
  EXPECT_EQ(raw, std::string(CsvHeader()) + "\n" + head +
                     "1,sku-0,\"Beans, \"\"dark\"\" roast\",2,3.50,0.00,0.0825,7.00,0.58" + tail +
                     head + "2,sku-1,\"Beans, \"\"dark\"\" roast\",2,3.50,0.00,0.0825,7.00,0.58" +
                     tail);
  EXPECT_EQ(CsvHeader(),
            "store_id,seq,sale_id,receipt_no,terminal_id,type,ref,created_at,received_at,"
            "clock_skew,currency,cashier,line_no,sku,name,qty,unit_price,discount,tax_rate,"
            "line_net,line_tax,sale_subtotal,sale_tax,sale_total,sale_paid,sale_change,"
            "payment_methods,hash,prev_hash,clock_untrusted");
}

// Issue 13: text cells a spreadsheet would run as formulas are written quoted with a
// leading apostrophe in CSV; JSON Lines keeps the exact text; numbers are untouched.
TEST_F(SyncTest, CsvNeutralisesFormulaCells) {
  const std::string names[] = {"=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)",
                               "Plain = fine"};
  for (size_t i = 0; i < std::size(names); ++i) {
    SaleSpec spec;
    spec.id = "f" + std::to_string(i);
    spec.name = names[i];
    ASSERT_TRUE(journal_->Append(MakeSale(spec)).get().ok());
  }
  std::vector<core::StoredSale> sales = AllSales();
  const std::string csv = EncodeBatch("S001", sales, BatchFormat::kCsv);
  EXPECT_NE(csv.find(",\"'=HYPERLINK(\"\"http://x\"\")\","), std::string::npos) << csv;
  EXPECT_NE(csv.find(",\"'+1+2\","), std::string::npos);
  EXPECT_NE(csv.find(",\"'-2+3\","), std::string::npos);
  EXPECT_NE(csv.find(",\"'@SUM(A1)\","), std::string::npos);
  EXPECT_NE(csv.find(",Plain = fine,"), std::string::npos);
  // No cell starts with a formula character unless it is a number the hub wrote.
  for (const char* bad : {",=", ",+", ",@", ",\t", ",-"}) {
    EXPECT_EQ(csv.find(bad), std::string::npos) << bad;
  }
  const std::string jsonl = EncodeBatch("S001", sales, BatchFormat::kJsonl);
  EXPECT_NE(jsonl.find("\"name\":\"=HYPERLINK(\\\"http://x\\\")\""), std::string::npos) << jsonl;
  EXPECT_NE(jsonl.find("\"name\":\"-2+3\""), std::string::npos);
}

TEST(BatchKeyTest, LayoutDatePartitionAndParsing) {
  const int64_t late = *core::ParseRfc3339("2026-11-27T23:59:59.999Z");
  EXPECT_EQ(BatchKey("pos", "S001", 1, 5000, late, BatchFormat::kJsonl),
            "pos/sales/store=S001/date=2026-11-27/S001-000000000001-000000005000.jsonl.gz");
  EXPECT_EQ(BatchKey("/chain/pos/", "S-7", 123456789012, 123456789013, late + 1, BatchFormat::kCsv),
            "chain/pos/sales/store=S-7/date=2026-11-28/S-7-123456789012-123456789013.csv.gz");
  EXPECT_EQ(BatchKey("", "S001", 2, 3, 0, BatchFormat::kJsonl),
            "sales/store=S001/date=1970-01-01/S001-000000000002-000000000003.jsonl.gz");
  EXPECT_EQ(UtcDate(-1), "1969-12-31");
  EXPECT_EQ(UtcDay(-1), -1);
  EXPECT_EQ(UtcDay(86'400'000), 1);
  EXPECT_EQ(SalesPrefix("pos/", "S001"), "pos/sales/store=S001/");
  ParsedKey parsed;
  ASSERT_TRUE(ParseBatchKey(
      "chain/pos/sales/store=S-7/date=2026-11-28/S-7-123456789012-123456789013.csv.gz", &parsed));
  EXPECT_EQ(parsed.store_id, "S-7");
  EXPECT_EQ(parsed.first_seq, 123456789012);
  EXPECT_EQ(parsed.last_seq, 123456789013);
  EXPECT_EQ(parsed.format, BatchFormat::kCsv);
  EXPECT_EQ(parsed.date, "2026-11-28");
  EXPECT_FALSE(ParseBatchKey("pos/sales/store=S001/x.jsonl.gz", &parsed));
  EXPECT_FALSE(ParseBatchKey("S001-000000000001-000000000002.txt.gz", &parsed));
  EXPECT_FALSE(ParseBatchKey("S001-00000000000a-000000000002.csv.gz", &parsed));
  EXPECT_FALSE(ParseBatchKey("-000000000001-000000000002.csv.gz", &parsed));
  // Metadata names and values (docs/S3_FORMAT.md).
  auto meta = ObjectMetadata("S001", BatchFormat::kJsonl, 1, 10, "aa", "bb", "cc", "dd");
  EXPECT_EQ(meta, (std::map<std::string, std::string>{{"format-version", "1"},
                                                      {"format", "jsonl"},
                                                      {"store-id", "S001"},
                                                      {"first-seq", "1"},
                                                      {"last-seq", "10"},
                                                      {"sales", "10"},
                                                      {"prev-hash", "aa"},
                                                      {"first-hash", "bb"},
                                                      {"last-hash", "cc"},
                                                      {"sha256", "dd"}}));
}

// ---- Cutting rules ----

TEST_F(SyncTest, CutsByCountThenByAge) {
  AppendSales(25);
  CutOptions options;
  options.max_sales = 10;
  options.max_age_ms = 60'000;
  BatchCutter cutter(journal_.get(), options, &clock_);
  std::vector<EncodedBatch> batches;
  for (;;) {
    Result<journal::SyncBounds> bounds = journal_->GetSyncBounds();
    ASSERT_TRUE(bounds.ok());
    Result<std::optional<EncodedBatch>> next = cutter.Next(*bounds, false);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    if (!next->has_value()) break;
    ASSERT_TRUE(journal_->RecordBatch((*next)->record).ok());
    batches.push_back(std::move(**next));
  }
  ASSERT_EQ(batches.size(), 2u);  // 1..10, 11..20; 21..25 are too young and too few
  EXPECT_EQ(batches[0].record.first_seq, 1);
  EXPECT_EQ(batches[0].record.last_seq, 10);
  EXPECT_EQ(batches[0].stop, EncodedBatch::Stop::kMaxSales);
  EXPECT_EQ(batches[1].record.first_seq, 11);
  EXPECT_EQ(batches[1].record.last_seq, 20);
  clock_.Advance(59'000);  // the oldest waiting sale is 59 s old (received at +1 s)
  ASSERT_FALSE(cutter.Next(*journal_->GetSyncBounds(), false)->has_value());
  clock_.Advance(1'000);
  Result<std::optional<EncodedBatch>> aged = cutter.Next(*journal_->GetSyncBounds(), false);
  ASSERT_TRUE(aged.ok() && aged->has_value());
  EXPECT_EQ((*aged)->record.first_seq, 21);
  EXPECT_EQ((*aged)->record.last_seq, 25);
  EXPECT_EQ((*aged)->stop, EncodedBatch::Stop::kEnd);
  // The record carries what the uploader and the journal need.
  const journal::BatchRecord& r = (*aged)->record;
  EXPECT_EQ(r.key, "sales/store=S001/date=2026-11-27/S001-000000000021-000000000025.jsonl.gz");
  EXPECT_EQ(r.format, "jsonl");
  EXPECT_EQ(r.gzip_level, kDefaultGzipLevel);
  EXPECT_EQ(r.gz_bytes, static_cast<int64_t>((*aged)->bytes.size()));
  EXPECT_EQ(r.sha256_hex, core::ToHex(core::Sha256((*aged)->bytes)));
  EXPECT_EQ(r.md5_hex, Md5Hex((*aged)->bytes));
  EXPECT_EQ(r.raw_bytes, static_cast<int64_t>(Gunzip((*aged)->bytes)->size()));
  EXPECT_EQ(r.canonical_bytes, *journal_->CanonicalBytes(20, 25));
  std::vector<core::StoredSale> sales = AllSales();
  EXPECT_EQ((*aged)->metadata.at("prev-hash"), core::ToHex(sales[19].hash));
  EXPECT_EQ((*aged)->metadata.at("first-hash"), core::ToHex(sales[20].hash));
  EXPECT_EQ((*aged)->metadata.at("last-hash"), core::ToHex(sales[24].hash));
  // Force cuts young sales at once (sync --once).
  AppendSales(3);
  ASSERT_TRUE(journal_->RecordBatch((*aged)->record).ok());
  ASSERT_FALSE(cutter.Next(*journal_->GetSyncBounds(), false)->has_value());
  Result<std::optional<EncodedBatch>> forced = cutter.Next(*journal_->GetSyncBounds(), true);
  ASSERT_TRUE(forced.ok() && forced->has_value());
  EXPECT_EQ((*forced)->record.first_seq, 26);
  EXPECT_EQ((*forced)->record.last_seq, 28);
  // ... but no further than upto_seq.
  Result<std::optional<EncodedBatch>> upto = cutter.Next(*journal_->GetSyncBounds(), true, 27);
  ASSERT_TRUE(upto.ok() && upto->has_value());
  EXPECT_EQ((*upto)->record.last_seq, 27);
}

TEST_F(SyncTest, CutsByBytesAndNeverExceedsTheLimit) {
  // Sales of 100 lines: about 9 KB of canonical bytes and 14 KB of JSON each.
  for (int i = 0; i < 12; ++i) {
    SaleSpec spec;
    spec.id = Str("big", i);
    spec.lines = 100;
    ASSERT_TRUE(journal_->Append(MakeSale(spec)).get().ok());
  }
  CutOptions options;
  options.max_raw_bytes = 64 << 10;
  BatchCutter cutter(journal_.get(), options, &clock_);
  Result<std::optional<EncodedBatch>> next = cutter.Next(*journal_->GetSyncBounds(), false);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  ASSERT_TRUE(next->has_value());  // due: canonical bytes reached the limit
  EXPECT_EQ((*next)->stop, EncodedBatch::Stop::kMaxBytes);
  EXPECT_LE((*next)->record.raw_bytes, 64 << 10);
  const int64_t per_sale = (*next)->record.raw_bytes / (*next)->record.sales();
  EXPECT_GT((*next)->record.raw_bytes + per_sale, 64 << 10);  // as full as it gets
  // One sale larger than the limit still makes a batch of one.
  options.max_raw_bytes = 64 << 10;
  SaleSpec huge;
  huge.id = "huge";
  huge.lines = 1000;
  BatchCutter forced(journal_.get(), options, &clock_);
  ASSERT_TRUE(journal_->RecordBatch((*next)->record).ok());
  journal::SyncBounds bounds = *journal_->GetSyncBounds();
  bounds.batched_seq = 12;
  ASSERT_TRUE(journal_->Append(MakeSale(huge)).get().ok());
  bounds = *journal_->GetSyncBounds();
  // Skip the rest of the 12 first.
  while (bounds.batched_seq < 12) {
    auto b = forced.Next(bounds, true, 12);
    ASSERT_TRUE(b.ok() && b->has_value());
    ASSERT_TRUE(journal_->RecordBatch((*b)->record).ok());
    bounds = *journal_->GetSyncBounds();
  }
  auto one = forced.Next(bounds, true);
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ((*one)->record.sales(), 1);
  EXPECT_GT((*one)->record.raw_bytes, 64 << 10);
  EXPECT_EQ(ValidateCutOptions(CutOptions{.max_raw_bytes = 16 << 20}).code(),
            ErrorCode::kInvalidArgument);
}

// A range of 1000 sales or more is compressed on a helper thread while rows are read
// (batch_cutter.h): the object must be byte for byte the one-shot encoding of the same
// rows, for both formats, with the byte limit and when re-encoded.
TEST_F(SyncTest, LargeBatchesEncodedInTwoStagesGiveTheSameBytes) {
  std::vector<std::future<Result<journal::Receipt>>> pending;
  for (int i = 0; i < 2400; ++i) {
    SaleSpec spec;
    spec.id = Str("two-stage-", i);
    spec.lines = 1 + i % 4;
    spec.card = i % 3 == 0;
    pending.push_back(journal_->Append(MakeSale(spec)));
  }
  for (auto& f : pending) ASSERT_TRUE(f.get().ok());
  const std::vector<core::StoredSale> sales = AllSales();
  ASSERT_EQ(sales.size(), 2400u);
  for (BatchFormat format : {BatchFormat::kJsonl, BatchFormat::kCsv}) {
    CutOptions options;
    options.format = format;
    options.max_sales = 5000;
    BatchCutter cutter(journal_.get(), options, &clock_);
    Result<std::optional<EncodedBatch>> next =
        cutter.Next(*journal_->GetSyncBounds(), /*force=*/true);
    ASSERT_TRUE(next.ok() && next->has_value()) << next.status().ToString();
    const EncodedBatch& batch = **next;
    EXPECT_EQ(batch.record.sales(), 2400);
    const std::string raw = EncodeBatch("S001", sales, format);
    EXPECT_EQ(batch.record.raw_bytes, static_cast<int64_t>(raw.size()));
    EXPECT_EQ(batch.bytes, *GzipDeterministic(raw, options.gzip_level));
    EXPECT_EQ(batch.record.sha256_hex, Sha256Hex(batch.bytes));
    EXPECT_EQ(*Gunzip(batch.bytes), raw);
    // Re-encoding the recorded range (the path after a restart) gives the same object.
    Result<EncodedBatch> again = cutter.Reencode(batch.record);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->bytes, batch.bytes);
  }
  // The byte limit still holds exactly: the batch ends before the record that would
  // cross it, and its bytes are those of the sales it holds.
  CutOptions limited;
  limited.max_sales = 5000;
  limited.max_raw_bytes = 1 << 20;
  BatchCutter cutter(journal_.get(), limited, &clock_);
  Result<std::optional<EncodedBatch>> next = cutter.Next(*journal_->GetSyncBounds(), true);
  ASSERT_TRUE(next.ok() && next->has_value());
  const EncodedBatch& batch = **next;
  EXPECT_EQ(batch.stop, EncodedBatch::Stop::kMaxBytes);
  const std::vector<core::StoredSale> held(sales.begin(), sales.begin() + batch.record.sales());
  const std::string raw = EncodeBatch("S001", held, BatchFormat::kJsonl);
  EXPECT_LE(static_cast<int64_t>(raw.size()), limited.max_raw_bytes);
  EXPECT_GT(raw.size() + EncodeBatch("S001", {sales[held.size()]}, BatchFormat::kJsonl).size(),
            static_cast<size_t>(limited.max_raw_bytes));
  EXPECT_EQ(batch.bytes, *GzipDeterministic(raw));
}

TEST_F(SyncTest, ABatchNeverSpansTwoUtcDates) {
  clock_.Set(*core::ParseRfc3339("2026-11-27T23:59:50Z"));
  AppendSales(3);
  clock_.Set(*core::ParseRfc3339("2026-11-28T00:00:05Z"));
  AppendSales(2);
  BatchCutter cutter(journal_.get(), CutOptions{}, &clock_);
  // Due although young and few: the waiting sales span two dates.
  Result<std::optional<EncodedBatch>> day1 = cutter.Next(*journal_->GetSyncBounds(), false);
  ASSERT_TRUE(day1.ok() && day1->has_value());
  EXPECT_EQ((*day1)->record.first_seq, 1);
  EXPECT_EQ((*day1)->record.last_seq, 3);
  EXPECT_EQ((*day1)->stop, EncodedBatch::Stop::kDateChange);
  EXPECT_NE((*day1)->record.key.find("/date=2026-11-27/"), std::string::npos);
  ASSERT_TRUE(journal_->RecordBatch((*day1)->record).ok());
  // The next day's sales wait for their own age rule.
  EXPECT_FALSE(cutter.Next(*journal_->GetSyncBounds(), false)->has_value());
  Result<std::optional<EncodedBatch>> day2 = cutter.Next(*journal_->GetSyncBounds(), true);
  ASSERT_TRUE(day2.ok() && day2->has_value());
  EXPECT_EQ((*day2)->record.first_seq, 4);
  EXPECT_NE((*day2)->record.key.find("/date=2026-11-28/"), std::string::npos);
}

// ---- Today's figures for the stores item ----
TEST_F(SyncTest, DayTotalsCountTheUtcDayIncrementallyAndAfterARestart) {
  clock_.Set(*core::ParseRfc3339("2026-11-27T23:59:50Z"));
  AppendSales(20);  // s1..s20, seq 1..20
  auto append = [&](const std::string& id, const std::string& type, const std::string& ref) {
    SaleSpec spec;
    spec.id = id;
    spec.type = type;
    spec.ref = ref;
    Result<journal::Receipt> r = journal_->Append(MakeSale(spec)).get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  append("r1", "refund", "s1");                       // seq 21
  const int64_t one = AllSales().front().sale.total;  // every sale and refund here: 1 line
  ASSERT_GT(one, 0);

  DayTotals day(journal_.get(), &clock_, 3);  // small chunks: several List calls
  Result<DayFigures> f = day.Update();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->date, "2026-11-27");
  EXPECT_EQ(f->currency, "USD");
  EXPECT_EQ(f->sales, 20);
  EXPECT_EQ(f->sales_total, 20 * one);
  EXPECT_EQ(f->refunds, 1);
  EXPECT_EQ(f->refunds_total, one);
  EXPECT_EQ(f->net_total(), 19 * one);
  EXPECT_EQ(f->first_seq, 1);
  EXPECT_EQ(f->last_seq, 21);
  // Only the new entries are read next time; the figures add up.
  AppendSales(2);  // seq 22, 23
  f = day.Update();
  EXPECT_EQ(f->sales, 22);
  EXPECT_EQ(f->last_seq, 23);

  // Midnight: a new day starts from zero.
  clock_.Set(*core::ParseRfc3339("2026-11-28T00:00:05Z"));
  f = day.Update();
  EXPECT_EQ(f->date, "2026-11-28");
  EXPECT_EQ(f->sales, 0);
  EXPECT_EQ(f->last_seq, 0);
  AppendSales(3, "d");  // seq 24..26
  append("v1", "void", "d25");
  f = day.Update();
  EXPECT_EQ(f->sales, 3);
  EXPECT_EQ(f->voids, 1);
  EXPECT_EQ(f->voids_total, one);
  EXPECT_EQ(f->net_total(), 2 * one);
  EXPECT_EQ(f->first_seq, 24);
  EXPECT_EQ(f->last_seq, 27);

  // A restarted hub finds the day's first entry by searching: the same figures.
  DayTotals restarted(journal_.get(), &clock_, 500);
  Result<DayFigures> g = restarted.Update();
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->first_seq, 24);
  EXPECT_EQ(g->sales, f->sales);
  EXPECT_EQ(g->voids_total, f->voids_total);
  EXPECT_EQ(g->net_total(), f->net_total());

  json attributes = DayTotals::Attributes(*g);
  EXPECT_EQ(attributes["today"]["S"], "2026-11-28");
  EXPECT_EQ(attributes["today_sales"]["N"], "3");
  EXPECT_EQ(attributes["today_net_total"]["N"], std::to_string(2 * one));
  EXPECT_EQ(attributes["today_currency"]["S"], "USD");
  EXPECT_EQ(attributes["today_last_seq"]["N"], "27");
}

// Store events are today's entries (first/last seq) but not sales: not counted, not
// summed, and a day that starts with a drawer_open takes its currency from the first sale.
TEST_F(SyncTest, DayTotalsSkipStoreEvents) {
  clock_.Set(*core::ParseRfc3339("2026-11-27T12:00:00Z"));
  AppendEvent("open-1", "drawer_open", {{"amount", "100.00"}});  // seq 1
  AppendSales(3);                                                // seq 2..4
  AppendEvent("in-1", "cash_in", {{"amount", "20.00"}, {"reason", "float"}});
  AppendEvent("close-1", "drawer_close", {{"counted", "150.00"}});
  AppendZ("z-1");  // seq 7
  const int64_t one = AllSales()[1].sale.total;
  DayTotals day(journal_.get(), &clock_, 2);
  Result<DayFigures> f = day.Update();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->currency, "USD");
  EXPECT_EQ(f->sales, 3);
  EXPECT_EQ(f->sales_total, 3 * one);
  EXPECT_EQ(f->refunds + f->voids + f->other_currency, 0);
  EXPECT_EQ(f->first_seq, 1);
  EXPECT_EQ(f->last_seq, 7);
  // A restart searches the day's first entry over events too.
  DayTotals restarted(journal_.get(), &clock_);
  Result<DayFigures> g = restarted.Update();
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->first_seq, 1);
  EXPECT_EQ(g->sales_total, f->sales_total);
}

TEST_F(SyncTest, DayTotalsOfADayWithoutEntries) {
  clock_.Set(*core::ParseRfc3339("2026-11-27T12:00:00Z"));
  AppendSales(5);
  clock_.Set(*core::ParseRfc3339("2026-11-29T08:00:00Z"));
  DayTotals day(journal_.get(), &clock_);
  Result<DayFigures> f = day.Update();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->date, "2026-11-29");
  EXPECT_EQ(f->sales, 0);
  EXPECT_EQ(f->first_seq, 0);
  json attributes = DayTotals::Attributes(*f);
  EXPECT_EQ(attributes["today_sales_total"]["N"], "0");
  EXPECT_FALSE(attributes.contains("today_currency"));
}

}  // namespace
}  // namespace machub::sync
