#include "app/tokens.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

namespace machub::app {
namespace {

const std::string kHashA(64, 'a');

class TokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("machub_tokens_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = TokensFilePath(dir_.string());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(TokensTest, GeneratedTokensAreDistinctAndUrlSafe) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto t = GenerateToken();
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->size(), 46u);
    EXPECT_EQ(t->rfind("mh_", 0), 0u);
    EXPECT_EQ(t->find_first_not_of(
                  "mh_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-", 3),
              std::string::npos)
        << *t;
    EXPECT_TRUE(seen.insert(*t).second);
  }
}

TEST_F(TokensTest, HashIsSha256Hex) {
  // SHA-256("abc"), FIPS 180-2 example.
  EXPECT_EQ(HashTokenHex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(ValidSha256Hex(HashTokenHex("mh_x")));
}

TEST_F(TokensTest, Validation) {
  EXPECT_TRUE(ValidTerminalId("T01"));
  EXPECT_TRUE(ValidTerminalId("a.b_c-D9"));
  EXPECT_TRUE(ValidTerminalId(std::string(32, 'x')));
  EXPECT_FALSE(ValidTerminalId(""));
  EXPECT_FALSE(ValidTerminalId(std::string(33, 'x')));
  EXPECT_FALSE(ValidTerminalId("T 1"));
  EXPECT_FALSE(ValidTerminalId("T:1"));
  EXPECT_FALSE(ValidSha256Hex(std::string(64, 'A')));
  EXPECT_FALSE(ValidSha256Hex(std::string(65, 'a')));
  auto e = ParseTokenSpec("T01:" + kHashA);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, (TokenEntry{"T01", kHashA}));
  EXPECT_FALSE(ParseTokenSpec("T01 " + kHashA).ok());
}

TEST_F(TokensTest, MissingFileIsEmpty) {
  auto entries = LoadTokensFile(path_);
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
}

TEST_F(TokensTest, AppendRoundTripWithMode0600) {
  std::vector<TokenEntry> first = {{"T01", HashTokenHex("one")}, {"T02", HashTokenHex("two")}};
  ASSERT_TRUE(AppendTokens(path_, first).ok());
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ASSERT_TRUE(AppendTokens(path_, {{"T03", HashTokenHex("three")}}).ok());
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto entries = LoadTokensFile(path_);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0], first[0]);
  EXPECT_EQ((*entries)[1], first[1]);
  EXPECT_EQ((*entries)[2].terminal_id, "T03");
  // No temporary file left behind.
  for (const auto& f : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(f.path().filename().string().find(".tmp"), std::string::npos) << f.path();
  }
}

TEST_F(TokensTest, OperatorEditsAndCommentsAreKept) {
  {
    std::ofstream out(path_);
    out << "# store 42 terminals\n"
        << "  T01\t" << kHashA << "   # front till\n"
        << "\n"
        << "T02 " << HashTokenHex("x");  // no final newline
  }
  ASSERT_TRUE(AppendTokens(path_, {{"T03", HashTokenHex("y")}}).ok());
  std::string content = Read(path_);
  EXPECT_EQ(content.rfind("# store 42 terminals\n  T01\t" + kHashA + "   # front till\n\nT02 ", 0),
            0u)
      << content;
  auto entries = LoadTokensFile(path_);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0], (TokenEntry{"T01", kHashA}));
  EXPECT_EQ((*entries)[2].terminal_id, "T03");
}

TEST_F(TokensTest, MalformedLineNamesFileAndLine) {
  std::ofstream(path_) << "T01 " << kHashA << "\nT02 mh_notahash\n";
  auto entries = LoadTokensFile(path_);
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(entries.status().message().find(path_ + " line 2"), std::string::npos)
      << entries.status().message();
  EXPECT_EQ(entries.status().message().find("mh_notahash"), std::string::npos);
}

TEST_F(TokensTest, ConcurrentAppendsLoseNothing) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string id = "T" + std::to_string(t) + "_" + std::to_string(i);
        EXPECT_TRUE(AppendTokens(path_, {{id, HashTokenHex(id)}}).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  auto entries = LoadTokensFile(path_);
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 40u);
}

TEST_F(TokensTest, AppendFailsCleanlyWhenFolderMissing) {
  Status st = AppendTokens((dir_ / "nope" / "tokens").string(), {{"T01", kHashA}});
  EXPECT_EQ(st.code(), ErrorCode::kIoError);
}

TEST_F(TokensTest, EnsureDataDirCreates0700AndKeepsExisting) {
  std::string data = (dir_ / "a" / "b" / "data").string() + "/";
  ASSERT_TRUE(EnsureDataDir(data).ok());
  struct stat st;
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ::chmod(data.c_str(), 0750);
  ASSERT_TRUE(EnsureDataDir(data).ok());
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u);
  std::ofstream((dir_ / "file").string()) << "x";
  EXPECT_EQ(EnsureDataDir((dir_ / "file").string()).code(), ErrorCode::kIoError);
}

TEST_F(TokensTest, SpecWithExpiry) {
  auto e = ParseTokenSpec("T01:" + kHashA + ":2026-11-28T10:00:00Z");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->terminal_id, "T01");
  EXPECT_EQ(e->sha256_hex, kHashA);
  EXPECT_EQ(e->expires_at_ms, 1'795'860'000'000);
  EXPECT_EQ(ParseTokenSpec("T01:" + kHashA)->expires_at_ms, 0);
  auto bad = ParseTokenSpec("T01:" + kHashA + ":tomorrow");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("RFC 3339"), std::string::npos);
  EXPECT_FALSE(ParseTokenSpec("T01:" + kHashA + "x:2026-11-28T10:00:00Z").ok());
}

TEST_F(TokensTest, FileThirdColumnIsTheExpiry) {
  std::ofstream(path_) << "T01 " << kHashA << " 2026-11-28T10:00:00Z  # rotated\n"
                       << "T02 " << kHashA << "\n";
  auto entries = LoadTokensFile(path_);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].expires_at_ms, 1'795'860'000'000);
  EXPECT_EQ((*entries)[1].expires_at_ms, 0);
  std::ofstream(path_) << "T01 " << kHashA << " 2026-11-28\n";
  auto bad = LoadTokensFile(path_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 1"), std::string::npos);
}

TEST_F(TokensTest, RotateExpiresOnlyThatTerminalsOpenTokens) {
  const std::string hash_b(64, 'b');
  const std::string hash_c(64, 'c');
  const std::string hash_new(64, 'd');
  const int64_t early = 1'795'800'000'000;  // before the rotation's expiry: kept
  const int64_t expiry = 1'795'860'000'000;
  ASSERT_TRUE(AppendTokens(path_, {{"T01", kHashA}, {"T02", hash_b}, {"T01", hash_c, early}}).ok());
  std::string before = Read(path_);
  before += "# operator note\n";
  std::ofstream(path_) << before;
  int expired = -1;
  ASSERT_TRUE(RotateTokens(path_, "T01", {"T01", hash_new}, expiry, &expired).ok());
  EXPECT_EQ(expired, 1);
  auto entries = LoadTokensFile(path_);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[0], (TokenEntry{"T01", kHashA, expiry}));
  EXPECT_EQ((*entries)[1], (TokenEntry{"T02", hash_b, 0}));
  EXPECT_EQ((*entries)[2], (TokenEntry{"T01", hash_c, early}));
  EXPECT_EQ((*entries)[3], (TokenEntry{"T01", hash_new, 0}));
  EXPECT_NE(Read(path_).find("# operator note\n"), std::string::npos);
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(RotateTokens(path_, "T01", {"T02", hash_new}, expiry).ok());
  EXPECT_FALSE(RotateTokens(path_, "T01", {"T01", hash_new}, 0).ok());
}

TEST_F(TokensTest, ManagerRoleInTheFileAndThroughRotation) {
  const std::string hash_b(64, 'b');
  const std::string hash_new(64, 'd');
  const int64_t expiry = 1'795'860'000'000;
  ASSERT_TRUE(
      AppendTokens(path_, {{"M01", kHashA, 0, http::Role::kManager}, {"T02", hash_b}}).ok());
  EXPECT_NE(Read(path_).find("M01 " + std::string(kHashA) + " role=manager\n"), std::string::npos);
  // Both orders of expiry and role; role=terminal is the default spelled out.
  std::ofstream(path_, std::ios::app)
      << "M02 " << hash_b << " role=manager 2026-11-28T10:00:00Z\n"
      << "T03 " << hash_b << " 2026-11-28T10:00:00Z role=terminal\n";
  auto entries = LoadTokensFile(path_);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[0], (TokenEntry{"M01", kHashA, 0, http::Role::kManager}));
  EXPECT_EQ((*entries)[1], (TokenEntry{"T02", hash_b}));
  EXPECT_EQ((*entries)[2], (TokenEntry{"M02", hash_b, expiry, http::Role::kManager}));
  EXPECT_EQ((*entries)[3], (TokenEntry{"T03", hash_b, expiry}));
  // Rotation keeps the role of the entries it expires.
  ASSERT_TRUE(RotateTokens(path_, "M01", {"M01", hash_new}, expiry).ok());
  entries = LoadTokensFile(path_);
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ((*entries)[0], (TokenEntry{"M01", kHashA, expiry, http::Role::kManager}));
  EXPECT_EQ(entries->back(), (TokenEntry{"M01", hash_new, 0, http::Role::kManager}));
  // Unknown roles, two roles, two expiries: the line is refused with its number.
  for (const char* tail : {" role=admin", " role=manager role=manager",
                           " 2026-11-28T10:00:00Z 2026-11-29T10:00:00Z", " manager"}) {
    std::ofstream(path_) << "# header\nT01 " << kHashA << tail << "\n";
    auto bad = LoadTokensFile(path_);
    ASSERT_FALSE(bad.ok()) << tail;
    EXPECT_NE(bad.status().message().find("line 2"), std::string::npos) << tail;
  }
  // The configuration form: manager_tokens uses the same spec.
  auto spec = ParseTokenSpec("M01:" + std::string(kHashA), http::Role::kManager);
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(spec->manager());
  EXPECT_EQ(TokenSpec(*spec), "M01:" + std::string(kHashA));
}

TEST_F(TokensTest, DurationParsing) {
  EXPECT_EQ(*ParseDurationMs("24h"), 86'400'000);
  EXPECT_EQ(*ParseDurationMs("2s"), 2'000);
  EXPECT_EQ(*ParseDurationMs("1500ms"), 1'500);
  EXPECT_EQ(*ParseDurationMs("1h30m"), 5'400'000);
  EXPECT_EQ(*ParseDurationMs("7d"), 7 * 86'400'000LL);
  EXPECT_EQ(*ParseDurationMs("90"), 90'000);
  EXPECT_EQ(*ParseDurationMs("0s"), 0);
  for (const char* bad : {"", "h", "2x", "-1h", "1.5h", "2s3", "99999999999999d"}) {
    EXPECT_FALSE(ParseDurationMs(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace machub::app
