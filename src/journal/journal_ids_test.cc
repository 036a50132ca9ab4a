// Finding a row by its id without an index on sales.id (schema v8, internal.h "finding a
// row by its id"): sale_ids written in bulk, the rows after it in memory, the id compared
// on the row, and the migration that rebuilds sales without its UNIQUE index.

#include <gtest/gtest.h>

#include <string>

#include "journal/internal.h"
#include "journal_test_support.h"

namespace machub::journal {
namespace {

int64_t Count(SqliteJournal& journal, const std::string& sql) {
  Result<int64_t> n = journal.QueryIntOnWriterForTest(sql);
  EXPECT_TRUE(n.ok()) << sql << ": " << n.status().ToString();
  return n.ok() ? *n : -1;
}

int64_t IndexedSeq(SqliteJournal& journal) {
  return Count(journal, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'ids_indexed_seq'");
}

// The keys in sale_ids that belong to their rows.
int64_t MatchingKeys(SqliteJournal& journal) {
  return Count(journal,
               "SELECT count(*) FROM sale_ids k JOIN sales s "
               "ON s.seq = k.seq AND k.id_hash = id_hash(s.id)");
}

// A bulk write goes over kIdKeyParts commits, one contiguous part of the key range each;
// only the last one moves ids_indexed_seq, and the rows it covers leave memory then.
TEST_F(JournalTest, BulkWriteOfSaleIdsTakesOnePartOfTheKeysPerCommit) {
  JournalOptions options = Options();
  options.id_keys_flush_rows = 4;
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  for (int i = 1; i <= 4; ++i) MustAppend(*journal, MakeSale(Str("k", i)));
  // The 4th commit started it with part 0: the keys of k1..k4 whose top 3 bits are 0.
  int64_t in_part0 = 0;
  for (int i = 1; i <= 4; ++i) {
    if ((static_cast<uint64_t>(IdHash(Str("k", i))) >> 61) == 0) ++in_part0;
  }
  EXPECT_EQ(Count(*journal, "SELECT count(*) FROM sale_ids"), in_part0);
  EXPECT_EQ(IndexedSeq(*journal), 0);
  // Six more commits write parts 1..6; the 7th writes part 7 and moves ids_indexed_seq to
  // 4, the last row when it started. The rows since are not in sale_ids.
  for (int i = 5; i <= 10; ++i) MustAppend(*journal, MakeSale(Str("k", i)));
  EXPECT_EQ(IndexedSeq(*journal), 0);
  MustAppend(*journal, MakeSale("k11"));
  EXPECT_EQ(IndexedSeq(*journal), 4);
  EXPECT_EQ(Count(*journal, "SELECT count(*) FROM sale_ids"), 4);
  EXPECT_EQ(Count(*journal, "SELECT count(*) FROM sale_ids WHERE seq <= 4"), 4);
  EXPECT_EQ(MatchingKeys(*journal), 4);
  EXPECT_TRUE(journal->IntegrityCheck().ok());
}

// Every id answers the same whether its key is in sale_ids or only in memory, during a
// bulk write and after it, before and after a reopen: a retry is a replay, another body
// a conflict, a refund finds it. (Every append, a replay too, is a commit that carries a
// part of a bulk write in progress.)
TEST_F(JournalTest, SaleIdsTakeRowsInBulkAndEveryIdIsFound) {
  JournalOptions options = Options();
  options.id_keys_flush_rows = 4;
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  auto check_ids = [&](SqliteJournal& j, int last) {
    for (int i = 1; i <= last; ++i) {
      const std::string id = Str("b", i);
      const int64_t seq = i <= 20 ? i : i + 2;  // the two refunds below are seq 21 and 22
      Result<std::optional<core::StoredSale>> got = j.Get(id);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ASSERT_TRUE(got->has_value()) << id;
      EXPECT_EQ((*got)->seq, seq);
      Result<Receipt> retry = j.Append(MakeSale(id)).get();
      ASSERT_TRUE(retry.ok()) << id << ": " << retry.status().ToString();
      EXPECT_FALSE(retry->created) << id;
      EXPECT_EQ(retry->seq, seq);
      SaleSpec other;
      other.id = id;
      other.unit_price = "9.99";
      Result<Receipt> conflict = j.Append(MakeSale(other)).get();
      ASSERT_FALSE(conflict.ok()) << id;
      EXPECT_EQ(conflict.status().code(), ErrorCode::kIdConflict) << id;
    }
    Result<std::optional<core::StoredSale>> absent = j.Get("never-stored");
    ASSERT_TRUE(absent.ok());
    EXPECT_FALSE(absent->has_value());
    EXPECT_TRUE(j.IntegrityCheck().ok());
  };
  for (int i = 1; i <= 19; ++i) {
    EXPECT_EQ(MustAppend(*journal, MakeSale(Str("b", i))).seq, i);
    check_ids(*journal, i);
  }
  EXPECT_EQ(MustAppend(*journal, MakeSale("b20")).seq, 20);
  // A refund of a sale found through sale_ids and one of a sale found in memory (no bulk
  // write ends kIdKeyParts - 1 commits after the one it starts with).
  ASSERT_GE(IndexedSeq(*journal), 2);
  ASSERT_LT(IndexedSeq(*journal), 20);
  for (const char* original : {"b2", "b20"}) {
    SaleSpec refund;
    refund.id = std::string("refund-") + original;
    refund.type = "refund";
    refund.ref = original;
    EXPECT_TRUE(MustAppend(*journal, MakeSale(refund)).created) << original;
  }
  MustAppend(*journal, MakeSale("b21"));
  MustAppend(*journal, MakeSale("b22"));
  // The retries and refunds above stored nothing twice.
  EXPECT_EQ(Count(*journal, "SELECT count(*) FROM sales"), 24);
  const int64_t indexed = IndexedSeq(*journal);
  ASSERT_LT(indexed, 24) << "the test needs rows outside sale_ids at the reopen";

  // After a reopen the rows after ids_indexed_seq are read back into memory.
  journal->Close();
  journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(IndexedSeq(*journal), indexed);
  check_ids(*journal, 22);
  EXPECT_EQ(Count(*journal, "SELECT count(*) FROM sales"), 24);
  // Every key in sale_ids is its row's, each row at most once.
  EXPECT_EQ(MatchingKeys(*journal), Count(*journal, "SELECT count(*) FROM sale_ids"));
  EXPECT_EQ(Count(*journal, "SELECT count(*) - count(DISTINCT seq) FROM sale_ids"), 0);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 24);
}

// A key in sale_ids that points at a row with another id (what a hash collision looks
// like) is not taken for the id: lookups compare the id on the row.
TEST_F(JournalTest, IdLookupComparesTheIdNotOnlyItsHash) {
  JournalOptions options = Options();
  options.id_keys_flush_rows = 1;
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    MustAppend(*journal, MakeSale("real"));
  }
  ExecRaw(options.path,
          "INSERT INTO sale_ids(id_hash, seq) VALUES(" + std::to_string(IdHash("ghost")) + ", 1)");
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  Result<std::optional<core::StoredSale>> got = journal->Get("ghost");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  Receipt ghost = MustAppend(*journal, MakeSale("ghost"));
  EXPECT_TRUE(ghost.created);
  EXPECT_EQ(ghost.seq, 2);
  got = journal->Get("ghost");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->seq, 2);
  Receipt retry = MustAppend(*journal, MakeSale("ghost"));
  EXPECT_FALSE(retry.created);
  EXPECT_EQ(retry.seq, 2);
  EXPECT_EQ(MustAppend(*journal, MakeSale("real")).seq, 1);
}

// IntegrityCheck (machub journal verify) reports a row that sale_ids should hold and
// does not.
TEST_F(JournalTest, IntegrityCheckFindsARowMissingFromSaleIds) {
  JournalOptions options = Options();
  options.id_keys_flush_rows = 2;
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    // The bulk write that the 2nd commit starts ends with the 9th: rows 1 and 2.
    for (int i = 1; i <= 10; ++i) MustAppend(*journal, MakeSale(Str("i", i)));
    EXPECT_EQ(IndexedSeq(*journal), 2);
    EXPECT_TRUE(journal->IntegrityCheck().ok());
  }
  ExecRaw(options.path, "DELETE FROM sale_ids WHERE seq = 2");
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  Status status = journal->IntegrityCheck();
  EXPECT_EQ(status.code(), ErrorCode::kInternal) << status.ToString();
  EXPECT_NE(status.ToString().find("1 rows are missing from sale_ids"), std::string::npos)
      << status.ToString();
}

TEST_F(JournalTest, IdHashIsTheFirstEightBytesOfSha256BigEndian) {
  // SHA-256("abc") = ba7816bf 8f01cfea ...
  EXPECT_EQ(IdHash("abc"), static_cast<int64_t>(0xba7816bf8f01cfeaULL));
  EXPECT_NE(IdHash("abc"), IdHash("abd"));
}

// A journal that a v7 binary left (sales with its UNIQUE id and REFERENCES, a refund)
// is rebuilt once: no index on id, no foreign key, sale_ids holding every row, and
// every id answering as before.
TEST_F(JournalTest, MigratesAVersion7DatabaseToVersion8) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    for (int i = 1; i <= 5; ++i) MustAppend(*journal, MakeSale(Str("m", i)));
    SaleSpec refund;
    refund.id = "refund-m1";
    refund.type = "refund";
    refund.ref = "m1";
    MustAppend(*journal, MakeSale(refund));
  }
  ExecRaw(options.path, kUndoV8 + "PRAGMA user_version=7");
  ASSERT_EQ(UserVersion(options.path), 7);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(options.path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT count(*) FROM sqlite_schema "
                                 "WHERE name = 'sqlite_autoindex_sales_1'",
                                 -1, &stmt, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int64(stmt, 0), 1) << "the fixture is not a v7 journal";
    sqlite3_finalize(stmt);
    sqlite3_close_v2(db);
  }

  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(UserVersion(options.path), 8);
  EXPECT_EQ(Count(*journal,
                  "SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'sales' "
                  "AND type = 'index' AND name <> 'sales_ref'"),
            0);
  EXPECT_EQ(Count(*journal, "SELECT count(*) FROM pragma_foreign_key_list('sales')"), 0);
  EXPECT_EQ(Count(*journal,
                  "SELECT count(*) FROM sale_ids k JOIN sales s "
                  "ON s.seq = k.seq AND k.id_hash = id_hash(s.id)"),
            6);
  EXPECT_EQ(Count(*journal,
                  "SELECT CAST(value AS INTEGER) FROM meta "
                  "WHERE key = 'ids_indexed_seq'"),
            6);
  EXPECT_TRUE(journal->IntegrityCheck().ok());
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 6);
  Receipt retry = MustAppend(*journal, MakeSale("m3"));
  EXPECT_FALSE(retry.created);
  EXPECT_EQ(retry.seq, 3);
  SaleSpec refund;
  refund.id = "refund-m2";
  refund.type = "refund";
  refund.ref = "m2";
  EXPECT_EQ(MustAppend(*journal, MakeSale(refund)).seq, 7);
  SaleSpec dangling = refund;
  dangling.id = "refund-nothing";
  dangling.ref = "not-stored";
  Result<Receipt> refused = journal->Append(MakeSale(dangling)).get();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kInvalidField);
}

TEST_F(JournalTest, OpenRefusesIdKeysFlushRowsBelowOne) {
  JournalOptions options = Options();
  options.id_keys_flush_rows = 0;
  Result<std::unique_ptr<SqliteJournal>> journal = SqliteJournal::Open(options);
  ASSERT_FALSE(journal.ok());
  EXPECT_EQ(journal.status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace machub::journal
