// Measures this machine's durable-write latency the way the journal pays it: append 4 KiB
// to a file and fdatasync, repeatedly. Prints one JSON line with median, p99 and max (ms).
//   fsync_probe DIR [ITERATIONS]

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fsync_probe DIR [ITERATIONS]\n");
    return 2;
  }
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 300;
  std::string path = std::string(argv[1]) + "/fsync-probe.tmp";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    std::perror("open");
    return 1;
  }
  std::vector<char> block(4096, 'x');
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()) ||
        fdatasync(fd) != 0) {
      std::perror("write/fdatasync");
      return 1;
    }
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  close(fd);
  unlink(path.c_str());
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[static_cast<size_t>(p * (ms.size() - 1))]; };
  std::printf(
      "{\"fdatasync_p50_ms\":%.3f,\"fdatasync_p99_ms\":%.3f,\"fdatasync_max_ms\":%.3f,"
      "\"iterations\":%d}\n",
      pct(0.5), pct(0.99), ms.back(), iterations);
  return 0;
}
