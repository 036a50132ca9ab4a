// The hub as a child process under loadgen load, SIGKILLed at random moments and
// restarted each time. Afterwards every sale the load generator saw acknowledged is in the
// journal exactly once, sequence numbers are gapless and the chain verifies.

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "harness.h"

namespace machub::testing {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* v = getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

TEST(CrashTest, SigkillUnderLoadLosesNothingAcknowledged) {
  const int kills = EnvInt("MACHUB_CRASH_KILLS", 20);
  TempDir dir;
  auto terminals = MakeTerminals(8);
  std::string tokens = dir.Join("tokens.txt");
  WriteTokensFile(tokens, terminals);
  std::string acked = dir.Join("acked.txt");

  Hub::Options o;
  o.data_dir = dir.Join("data");
  o.terminals = terminals;
  o.log_path = dir.Join("hub.log");
  auto hub = Hub::Start(o);
  o.port = hub->port();  // restarts listen where the load generator points

  // Long enough to outlast every kill; stopped with SIGTERM below.
  ChildProcess loadgen({MachubBinary(), "loadgen", "--url", hub->url(), "--tokens", tokens,
                        "--terminals", "8", "--duration", "600", "--acked", acked,
                        "--retry-percent", "5", "--refund-percent", "5", "--seed", "7"},
                       dir.Join("loadgen.log"));

  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> pause_ms(50, 400);
  int done = 0;
  for (; done < kills; ++done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    ASSERT_TRUE(loadgen.Running()) << "loadgen exited early; see " << loadgen.log_path();
    hub->Kill();
    hub = Hub::Start(o);
  }
  // Let the load generator get answers for what it was retrying, then stop it.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  loadgen.Signal(SIGTERM);
  ASSERT_EQ(loadgen.Wait(std::chrono::seconds(30)), 0) << "see " << loadgen.log_path();
  ASSERT_EQ(hub->Terminate(), 0);

  std::set<std::string> acked_ids;
  {
    std::ifstream in(acked);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) acked_ids.insert(line);
    }
  }
  ASSERT_GT(acked_ids.size(), 100u) << "too little load to prove anything";

  sqlite3* db = nullptr;
  ASSERT_EQ(
      sqlite3_open_v2((o.data_dir + "/journal.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
      SQLITE_OK);
  std::map<std::string, int> count;
  int64_t rows = 0, max_seq = 0, min_seq = 0;
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT id, seq FROM sales ORDER BY seq", -1, &st, nullptr),
            SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    count[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))]++;
    int64_t seq = sqlite3_column_int64(st, 1);
    if (rows == 0) min_seq = seq;
    max_seq = seq;
    ++rows;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);

  int64_t lost = 0, duplicated = 0;
  for (const auto& id : acked_ids) {
    auto it = count.find(id);
    if (it == count.end()) ++lost;
  }
  for (const auto& [id, n] : count) {
    if (n > 1) ++duplicated;
  }
  std::cout << "crash test: kills=" << done << " acked=" << acked_ids.size()
            << " journal_rows=" << rows << " lost=" << lost << " duplicated=" << duplicated << "\n";
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_EQ(min_seq, 1);
  EXPECT_EQ(max_seq, rows) << "sequence numbers have a gap";

  auto verify = RunCommand({MachubBinary(), "journal", "verify", "--data-dir", o.data_dir});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_NE(verify.out.find("\"chain\":\"ok\""), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find("\"integrity\":\"ok\""), std::string::npos) << verify.out;
}

}  // namespace
}  // namespace machub::testing
