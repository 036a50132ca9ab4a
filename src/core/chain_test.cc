#include "core/chain.h"

#include <gtest/gtest.h>

#include "core/sha256.h"

namespace machub::core {
namespace {

// Golden values computed outside this code:
//   printf 'machub-genesis-v1\nS001' | sha256sum
constexpr char kGenesisS001[] = "d183dd8bcd09780f337bc9ee2a10d770b92dff08abaa141a6c57f24717caa07b";

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(ToHex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Of({"a", "", "bc"}), Sha256("abc"));
  EXPECT_EQ(Sha256("abc").size(), 32u);
}

TEST(Hex, RoundTripAndErrors) {
  const std::string bytes("\x00\x01\xab\xff", 4);
  EXPECT_EQ(ToHex(bytes), "0001abff");
  EXPECT_EQ(*FromHex("0001abff"), bytes);
  EXPECT_EQ(*FromHex("0001ABFF"), bytes);
  EXPECT_EQ(*FromHex(""), "");
  EXPECT_EQ(FromHex("abc").status().code(), ErrorCode::kInvalidArgument);  // odd length
  EXPECT_EQ(FromHex("zz").status().code(), ErrorCode::kInvalidArgument);   // not hex
  EXPECT_EQ(FromHex("0g").status().code(), ErrorCode::kInvalidArgument);
}

TEST(Chain, GenesisGolden) {
  EXPECT_EQ(ToHex(GenesisHash("S001")), kGenesisS001);
  EXPECT_NE(GenesisHash("S002"), GenesisHash("S001"));
  EXPECT_EQ(GenesisHash("S001").size(), 32u);
}

TEST(Chain, RecordLayout) {
  EXPECT_EQ(CanonicalRecord(1, "T01-000001", 1795774500123, false, "{\"id\":\"x\"}"),
            "machub-record-v1\nseq=1\nreceipt=T01-000001\nreceived_at=1795774500123\nskew=0\n"
            "{\"id\":\"x\"}");
  EXPECT_EQ(CanonicalRecord(1234, "T02-000009", -5, true, ""),
            "machub-record-v1\nseq=1234\nreceipt=T02-000009\nreceived_at=-5\nskew=1\n");
}

TEST(Chain, HashGolden) {
  // python3: sha256(sha256(b'machub-genesis-v1\nS001').digest() + record).hexdigest()
  const std::string record =
      CanonicalRecord(1, "T01-000001", 1795774500123, false, "{\"id\":\"x\"}");
  EXPECT_EQ(ToHex(ChainHash(GenesisHash("S001"), record)),
            "e1cc3cfed506018c59272f72051f4b21f04b7f58b0661a8eed9d404887216ba2");
}

TEST(Chain, EveryByteMatters) {
  const std::string prev = GenesisHash("S001");
  const std::string record =
      CanonicalRecord(7, "T01-000003", 1795774500000, false, "{\"id\":\"a\",\"total\":\"1\"}");
  const std::string hash = ChainHash(prev, record);
  for (size_t i = 0; i < record.size(); ++i) {
    std::string changed = record;
    changed[i] ^= 0x01;
    EXPECT_NE(ChainHash(prev, changed), hash) << "byte " << i;
  }
  std::string other_prev = prev;
  other_prev[31] ^= 0x80;
  EXPECT_NE(ChainHash(other_prev, record), hash);
  EXPECT_NE(ChainHash(prev, CanonicalRecord(7, "T01-000003", 1795774500000, true,
                                            "{\"id\":\"a\",\"total\":\"1\"}")),
            hash);
  EXPECT_NE(ChainHash(prev, CanonicalRecord(8, "T01-000003", 1795774500000, false,
                                            "{\"id\":\"a\",\"total\":\"1\"}")),
            hash);
  // Deterministic.
  EXPECT_EQ(ChainHash(prev, record), hash);
}

}  // namespace
}  // namespace machub::core
