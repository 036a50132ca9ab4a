#include "cloud/local_sink.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "temp_dir.h"

namespace machub::cloud {
namespace {

namespace fs = std::filesystem;

// MD5("hello world"), as S3 would give as the ETag of a single-part PUT.
constexpr const char* kHelloMd5 = "5eb63bbbe01eeed093cb22bb8f5acdc3";

class LocalSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    dir_ = tmp_.path();
    root_ = dir_ + "/sink";
    auto sink = LocalSink::Open({.root = root_});
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    sink_ = std::move(*sink);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(root_, fs::perms::owner_all, fs::perm_options::add, ec);
  }

  static PutRequest Request(std::string key, std::string body,
                            std::map<std::string, std::string> metadata = {}) {
    PutRequest r;
    r.key = std::move(key);
    r.body = std::move(body);
    r.metadata = std::move(metadata);
    return r;
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Every file under the root, relative, sorted.
  std::set<std::string> AllFiles() const {
    std::set<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(root_)) {
      if (e.is_regular_file()) out.insert(e.path().string().substr(root_.size() + 1));
    }
    return out;
  }

  machub::testing::TempDir tmp_{"local_sink_test"};  // removed after everything below
  std::string dir_;
  std::string root_;
  std::unique_ptr<LocalSink> sink_;
};

TEST_F(LocalSinkTest, RoundTrip) {
  const std::string key = "pos/sales/store=S001/date=2026-11-27/S001-000001-000010.jsonl.gz";
  auto put = sink_->Put(Request(key, "hello world", {{"first-hash", "ab"}, {"last-hash", "cd"}}));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(*put, PutOutcome::kCreated);

  auto head = sink_->Head(key);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->etag, kHelloMd5);
  EXPECT_EQ(head->size, 11);
  EXPECT_EQ(head->metadata,
            (std::map<std::string, std::string>{{"first-hash", "ab"}, {"last-hash", "cd"}}));

  auto get = sink_->Get(key);
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_FALSE(get->not_modified);
  EXPECT_EQ(get->body, "hello world");
  EXPECT_EQ(get->etag, kHelloMd5);

  auto cached = sink_->Get(key, std::string("\"") + kHelloMd5 + "\"");
  ASSERT_TRUE(cached.ok());
  EXPECT_TRUE(cached->not_modified);
  EXPECT_TRUE(cached->body.empty());
  auto changed = sink_->Get(key, "0123");
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(changed->not_modified);
  EXPECT_EQ(changed->body, "hello world");

  auto list = sink_->List("pos/sales/");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->objects.size(), 1u);
  EXPECT_EQ(list->objects[0].first, key);
  EXPECT_EQ(list->objects[0].second.etag, kHelloMd5);
  EXPECT_EQ(list->objects[0].second.size, 11);
  EXPECT_TRUE(list->next_token.empty());

  EXPECT_EQ(ReadFile(root_ + "/" + key), "hello world");
  EXPECT_EQ(sink_->Describe(), "file://" + root_);
  EXPECT_TRUE(sink_->Probe().ok());
}

TEST_F(LocalSinkTest, MissingObjects) {
  EXPECT_EQ(sink_->Head("nope").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(sink_->Get("a/b/nope").status().code(), ErrorCode::kNotFound);
  auto list = sink_->List("nothing/here/");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->objects.empty());
}

TEST_F(LocalSinkTest, NoOverwrite) {
  ASSERT_EQ(*sink_->Put(Request("k/x.gz", "first", {{"v", "1"}})), PutOutcome::kCreated);
  auto again = sink_->Put(Request("k/x.gz", "second", {{"v", "2"}}));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, PutOutcome::kAlreadyExists);
  EXPECT_EQ(sink_->Get("k/x.gz")->body, "first");
  EXPECT_EQ(sink_->Head("k/x.gz")->metadata.at("v"), "1");

  // Without If-None-Match the object is replaced, metadata included.
  PutRequest overwrite = Request("k/x.gz", "third", {{"v", "3"}});
  overwrite.if_none_match = false;
  EXPECT_EQ(*sink_->Put(overwrite), PutOutcome::kCreated);
  EXPECT_EQ(sink_->Get("k/x.gz")->body, "third");
  EXPECT_EQ(sink_->Head("k/x.gz")->metadata.at("v"), "3");
}

TEST_F(LocalSinkTest, ConcurrentPutRaceHasExactlyOneWinner) {
  constexpr int kWriters = 8;
  for (int round = 0; round < 20; ++round) {
    const std::string key = "race/" + std::to_string(round);
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<Result<PutOutcome>> results(kWriters, Status(ErrorCode::kInternal, "unset"));
    std::vector<std::thread> threads;
    for (int i = 0; i < kWriters; ++i) {
      threads.emplace_back([&, i] {
        // Each writer opens its own sink: separate processes behave the same way.
        auto sink = LocalSink::Open({.root = root_});
        ready.fetch_add(1);
        while (!go.load()) std::this_thread::yield();
        results[i] = (*sink)->Put(
            Request(key, "body-" + std::to_string(i), {{"writer", std::to_string(i)}}));
      });
    }
    while (ready.load() < kWriters) std::this_thread::yield();
    go.store(true);
    for (auto& t : threads) t.join();

    int created = 0, winner = -1;
    for (int i = 0; i < kWriters; ++i) {
      ASSERT_TRUE(results[i].ok()) << results[i].status().ToString();
      if (*results[i] == PutOutcome::kCreated) {
        ++created;
        winner = i;
      }
    }
    ASSERT_EQ(created, 1) << "round " << round;
    // The loser never replaced the winner's bytes or metadata.
    EXPECT_EQ(sink_->Get(key)->body, "body-" + std::to_string(winner));
    EXPECT_EQ(sink_->Head(key)->metadata.at("writer"), std::to_string(winner));
  }
  // No temporary file survives a race.
  for (const std::string& f : AllFiles()) {
    EXPECT_EQ(f.find(".machub-tmp-"), std::string::npos) << f;
  }
}

TEST_F(LocalSinkTest, DurabilityStructure) {
  PutRequest r = Request("a/b/c.csv.gz", "payload", {{"chain-first", "00ff"}});
  r.content_type = "text/csv";
  r.content_encoding = "gzip";
  ASSERT_EQ(*sink_->Put(r), PutOutcome::kCreated);

  // Exactly the object, its metadata beside it, and the lock file: no temporary left.
  EXPECT_EQ(AllFiles(),
            (std::set<std::string>{"a/b/c.csv.gz", "a/b/c.csv.gz.meta.json", ".machub-lock"}));
  auto meta = nlohmann::json::parse(ReadFile(root_ + "/a/b/c.csv.gz.meta.json"));
  EXPECT_EQ(meta["metadata"]["chain-first"], "00ff");
  EXPECT_EQ(meta["content_type"], "text/csv");
  EXPECT_EQ(meta["content_encoding"], "gzip");
  EXPECT_EQ(meta["size"], 7);
  EXPECT_EQ(meta["etag"], sink_->Head("a/b/c.csv.gz")->etag);
  struct stat st;
  ASSERT_EQ(stat((root_ + "/a/b/c.csv.gz").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);

  // What a crash can leave behind: a temporary file, and metadata whose object never got
  // in place. Neither is listed, and the metadata alone does not make an object.
  std::ofstream(root_ + "/a/b/.machub-tmp-123-0-deadbeef") << "partial";
  std::ofstream(root_ + "/a/b/lost.gz.meta.json") << R"({"metadata":{"v":"old"}})";
  auto list = sink_->List("");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->objects.size(), 1u);
  EXPECT_EQ(list->objects[0].first, "a/b/c.csv.gz");
  EXPECT_EQ(sink_->Head("a/b/lost.gz").status().code(), ErrorCode::kNotFound);
  ASSERT_EQ(*sink_->Put(Request("a/b/lost.gz", "now", {{"v", "new"}})), PutOutcome::kCreated);
  EXPECT_EQ(sink_->Head("a/b/lost.gz")->metadata.at("v"), "new");
}

TEST_F(LocalSinkTest, BadKeysAreRefused) {
  for (const std::string& key :
       std::vector<std::string>{"", "/etc/passwd", "..", "../x", "a/../../x", "a/./b", "./a",
                                "a//b", "a/", ".machub-lock", "a/.machub-tmp-1", "x.meta.json",
                                "a/b.meta.json/c", std::string("a\0b", 3)}) {
    auto put = sink_->Put(Request(key, "evil"));
    ASSERT_FALSE(put.ok()) << "key '" << key << "' was accepted";
    EXPECT_EQ(put.status().code(), ErrorCode::kInvalidArgument) << key;
    EXPECT_EQ(sink_->Head(key).status().code(), ErrorCode::kInvalidArgument) << key;
    EXPECT_EQ(sink_->Get(key).status().code(), ErrorCode::kInvalidArgument) << key;
  }
  EXPECT_TRUE(AllFiles().empty());
  EXPECT_FALSE(fs::exists(dir_ + "/x"));
  // Dots inside a name are fine.
  EXPECT_EQ(*sink_->Put(Request("a/..b/c..d/.e", "ok")), PutOutcome::kCreated);
}

TEST_F(LocalSinkTest, KeyWhereAFolderIsNeeded) {
  ASSERT_EQ(*sink_->Put(Request("a", "file")), PutOutcome::kCreated);
  auto put = sink_->Put(Request("a/b", "under a file"));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(LocalSinkTest, ListPagesInKeyOrderWithPrefix) {
  auto fast = LocalSink::Open({.root = root_, .fsync = false});
  ASSERT_TRUE(fast.ok());
  std::set<std::string> expected;
  for (int i = 0; i < 1003; ++i) {
    char key[64];
    std::snprintf(key, sizeof(key), "p/store=S1/S1-%06d.gz", i);
    ASSERT_EQ(*(*fast)->Put(Request(key, "x")), PutOutcome::kCreated);
    expected.insert(key);
  }
  ASSERT_EQ(*(*fast)->Put(Request("p/store=S2/other.gz", "y")), PutOutcome::kCreated);
  ASSERT_EQ(*(*fast)->Put(Request("q.gz", "z")), PutOutcome::kCreated);

  auto page1 = sink_->List("p/store=S1");  // a prefix that ends inside a name
  ASSERT_TRUE(page1.ok()) << page1.status().ToString();
  ASSERT_EQ(page1->objects.size(), 1000u);
  ASSERT_FALSE(page1->next_token.empty());
  auto page2 = sink_->List("p/store=S1", page1->next_token);
  ASSERT_TRUE(page2.ok());
  ASSERT_EQ(page2->objects.size(), 3u);
  EXPECT_TRUE(page2->next_token.empty());

  std::vector<std::string> keys;
  for (const auto* page : {&*page1, &*page2}) {
    for (const auto& [key, info] : page->objects) {
      keys.push_back(key);
      EXPECT_EQ(info.size, 1);
    }
  }
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), expected);

  auto all = sink_->List("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->objects.size(), 1000u);
  EXPECT_EQ(all->objects.front().first, "p/store=S1/S1-000000.gz");
}

TEST_F(LocalSinkTest, ProbeFailsWhenTheFolderGoes) {
  EXPECT_TRUE(sink_->Probe().ok());
  fs::remove_all(root_);
  Status probe = sink_->Probe();
  EXPECT_EQ(probe.code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(IsRetryable(probe));
  auto put = sink_->Put(Request("k", "v"));
  ASSERT_FALSE(put.ok());
  EXPECT_TRUE(IsRetryable(put.status())) << put.status().ToString();
}

TEST_F(LocalSinkTest, ReadOnlyFolderIsAnAuthError) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores file permissions";
  fs::permissions(root_, fs::perms::owner_read | fs::perms::owner_exec);
  auto put = sink_->Put(Request("k", "v"));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), ErrorCode::kUnauthorized);
}

TEST(LocalSinkOpenTest, RefusesEmptyRootAndAFile) {
  EXPECT_EQ(LocalSink::Open({.root = ""}).status().code(), ErrorCode::kInvalidArgument);
  std::string tmpl = (fs::temp_directory_path() / "local_sink_file.XXXXXX").string();
  int fd = mkstemp(tmpl.data());
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(LocalSink::Open({.root = tmpl}).status().code(), ErrorCode::kIoError);
  unlink(tmpl.c_str());
}

}  // namespace
}  // namespace machub::cloud
