// Test helper (never installed): the two S3 operations the deployment tests need that no
// machub subcommand offers, done by the hub's own S3 client (src/cloud) so the requests are
// signed exactly as the hub signs them.
//
// Usage:
//   deploy_s3_tool mb ENDPOINT REGION BUCKET          create the bucket (exists: fine)
//   deploy_s3_tool ls ENDPOINT REGION BUCKET [PREFIX]  one "<size> <key>" line per object
// Credentials come from the usual chain (src/cloud/credentials.h): the tests pass the RGW
// keys as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in this helper's environment only.
// Path-style addressing (a local RGW has no per-bucket host names). Exit 0 on success,
// 1 with the error on stderr, 2 for a usage error.

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cloud/credentials.h"
#include "cloud/s3_client.h"

namespace {

int Usage() {
  std::cerr << "usage: deploy_s3_tool mb|ls ENDPOINT REGION BUCKET [PREFIX]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || argc > 6) return Usage();
  const std::string op = argv[1];
  if (op != "mb" && op != "ls") return Usage();
  if (op == "mb" && argc != 5) return Usage();

  auto credentials = machub::cloud::MakeDefaultCredentialsProvider({});
  if (!credentials.ok()) {
    std::cerr << "deploy_s3_tool: " << credentials.status().ToString() << "\n";
    return 1;
  }
  machub::cloud::S3Options options;
  options.endpoint = argv[2];
  options.region = argv[3];
  options.bucket = argv[4];
  options.addressing = machub::cloud::S3Addressing::kPathStyle;
  options.credentials = credentials->get();
  options.total_timeout_ms = 30000;
  auto client = machub::cloud::S3Client::Create(options);
  if (!client.ok()) {
    std::cerr << "deploy_s3_tool: " << client.status().ToString() << "\n";
    return 1;
  }

  if (op == "mb") {
    machub::Status created = (*client)->CreateBucket();
    if (!created.ok()) {
      std::cerr << "deploy_s3_tool: " << created.ToString() << "\n";
      return 1;
    }
    return 0;
  }

  const std::string prefix = argc == 6 ? argv[5] : "";
  std::string token;
  do {
    auto page = (*client)->List(prefix, token);
    if (!page.ok()) {
      std::cerr << "deploy_s3_tool: " << page.status().ToString() << "\n";
      return 1;
    }
    for (const auto& object : page->objects) {
      std::printf("%lld %s\n", static_cast<long long>(object.second.size), object.first.c_str());
    }
    token = page->next_token;
  } while (!token.empty());
  return 0;
}
