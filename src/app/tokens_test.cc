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

}  // namespace
}  // namespace machub::app
