// The packed canonical (canonical_pack.h): the format round-trips, refuses what it did
// not write, and a journal that holds both packed rows and rows written as TEXT before
// reads, verifies, counts and deduplicates both alike.

#include "journal/canonical_pack.h"

#include <random>

#include "core/sale_codec.h"
#include "journal/journal_test_support.h"

namespace machub::journal {
namespace {

std::string RoundTrip(const std::string& canonical) {
  const std::string packed = PackCanonical(canonical);
  Result<std::string> back = UnpackCanonical(packed);
  EXPECT_TRUE(back.ok()) << back.status().ToString();
  return back.ok() ? *back : std::string("<failed>");
}

TEST(CanonicalPack, RoundTripsWhatever) {
  std::mt19937 rng(7);
  std::string noise(200'000, '\0');
  for (char& c : noise) c = static_cast<char>(rng());  // incompressible, and > 64 KiB
  const std::string sale = core::CanonicalSale(MakeSale(SaleSpec{.id = "p1", .lines = 10}));
  for (const std::string& canonical :
       {std::string(), std::string("{}"), sale, std::string("{\"name\":\"Caf\xc3\xa9 \\u00e9\"}"),
        std::string(300'000, 'x'), noise}) {
    EXPECT_EQ(RoundTrip(canonical), canonical) << canonical.size() << " bytes";
    EXPECT_EQ(CanonicalSize(PackCanonical(canonical).data(),
                            static_cast<int>(PackCanonical(canonical).size()), true),
              static_cast<int64_t>(canonical.size()));
  }
}

// The point of packing: a sale's row fits a 1 KiB page without an overflow page.
TEST(CanonicalPack, ASalePacksToLessThanHalf) {
  const std::string sale = core::CanonicalSale(MakeSale(SaleSpec{.id = "p1", .lines = 5}));
  const std::string packed = PackCanonical(sale);
  EXPECT_GT(sale.size(), 700u);
  EXPECT_LT(packed.size() * 2, sale.size()) << packed.size() << " of " << sale.size();
  EXPECT_EQ(static_cast<unsigned char>(packed[0]), kPackedCanonicalV1);
}

// The fallback when zlib cannot allocate: stored blocks, still format 1.
TEST(CanonicalPack, StoredBlocksAreFormatOneToo) {
  for (size_t n : {size_t{0}, size_t{10}, size_t{65'535}, size_t{65'536}, size_t{150'000}}) {
    std::string canonical(n, 'a');
    for (size_t i = 0; i < n; ++i) canonical[i] = static_cast<char>('a' + i % 26);
    Result<std::string> back = UnpackCanonical(PackCanonicalStored(canonical));
    ASSERT_TRUE(back.ok()) << n << ": " << back.status().ToString();
    EXPECT_EQ(*back, canonical);
  }
}

TEST(CanonicalPack, RefusesWhatItDidNotWrite) {
  const std::string sale = core::CanonicalSale(MakeSale("p1"));
  const std::string packed = PackCanonical(sale);
  auto refused = [](const std::string& bytes) {
    Result<std::string> back = UnpackCanonical(bytes);
    return !back.ok() && back.status().code() == ErrorCode::kInternal;
  };
  EXPECT_TRUE(refused(""));
  EXPECT_TRUE(refused(packed.substr(0, 4)));                  // a short header
  EXPECT_TRUE(refused("\x02" + packed.substr(1)));            // an unknown format
  EXPECT_TRUE(refused(packed.substr(0, packed.size() - 3)));  // a cut stream
  EXPECT_TRUE(refused(packed + "xyz"));                       // bytes after the stream
  std::string longer = packed;
  longer[4] = static_cast<char>(longer[4] + 1);  // the header says one byte more
  EXPECT_TRUE(refused(longer));
  std::string shorter = packed;
  shorter[4] = static_cast<char>(shorter[4] - 1);  // one byte less
  EXPECT_TRUE(refused(shorter));
  // A header claiming more than DEFLATE can expand to is refused before any allocation
  // (found by fuzz/canonical_pack_fuzz: 2.6 GB asked for by a 60-byte blob).
  std::string huge = packed;
  huge[1] = '\x9e';
  EXPECT_TRUE(refused(huge));
  EXPECT_EQ(CanonicalSize(huge.data(), static_cast<int>(huge.size()), true) >> 24, 0x9e);
  std::string flipped = packed;
  flipped[packed.size() / 2] = static_cast<char>(flipped[packed.size() / 2] ^ 0x5a);
  Result<std::string> garbled = UnpackCanonical(flipped);
  EXPECT_TRUE(!garbled.ok() || *garbled != sale);  // never the sale itself
  EXPECT_EQ(CanonicalSize("\x02xxxx", 5, true), -1);
  EXPECT_EQ(CanonicalSize("abc", 3, false), 3);
}

// A journal from before packing holds TEXT rows; after an upgrade new rows are BLOBs.
// Reads, the chain check, the byte count, retries and refunds treat both alike.
TEST_F(JournalTest, PackedAndTextRowsReadAlike) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  MustAppend(*journal, MakeSale(SaleSpec{.id = "old", .lines = 3}));
  MustAppend(*journal, MakeSale(SaleSpec{.id = "new", .lines = 2}));
  EXPECT_EQ(*journal->QueryIntOnWriterForTest(
                "SELECT count(*) FROM sales WHERE typeof(canonical) = 'blob'"),
            2);
  // Make "old" a row written before packing: its canonical as TEXT.
  const std::string old_canonical = (*journal->Get("old"))->canonical;
  ASSERT_EQ(old_canonical.find('\''), std::string::npos);
  ASSERT_TRUE(journal
                  ->ExecOnWriterForTest("UPDATE sales SET canonical = '" + old_canonical +
                                        "' WHERE id = 'old'")
                  .ok());
  EXPECT_EQ(*journal->QueryIntOnWriterForTest(
                "SELECT count(*) FROM sales WHERE typeof(canonical) = 'text'"),
            1);

  EXPECT_EQ((*journal->Get("old"))->canonical, old_canonical);
  Result<std::vector<core::StoredSale>> listed = journal->List(0, 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].canonical, old_canonical);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 2);
  Result<int64_t> bytes = journal->CanonicalBytes(0, 2);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes,
            static_cast<int64_t>(old_canonical.size() + (*journal->Get("new"))->canonical.size()));

  // A retry of either is answered from the row; a different body is a conflict.
  for (const char* id : {"old", "new"}) {
    Result<Receipt> again =
        journal->Append(MakeSale(SaleSpec{.id = id, .lines = std::string(id) == "old" ? 3 : 2}))
            .get();
    ASSERT_TRUE(again.ok()) << id << ": " << again.status().ToString();
    EXPECT_FALSE(again->created) << id;
    EXPECT_EQ(journal->Append(MakeSale(SaleSpec{.id = id, .lines = 7})).get().status().code(),
              ErrorCode::kIdConflict)
        << id;
  }
  // A refund is judged against the original read back from either form.
  SaleSpec refund{.id = "refund-old", .type = "refund", .ref = "old"};
  EXPECT_TRUE(journal->Append(MakeSale(refund)).get().ok());
  refund = SaleSpec{.id = "refund-new", .type = "refund", .ref = "new"};
  EXPECT_TRUE(journal->Append(MakeSale(refund)).get().ok());
  EXPECT_EQ(*journal->VerifyChain(), 4);
}

}  // namespace
}  // namespace machub::journal
