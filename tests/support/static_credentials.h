#pragma once
// StaticCredentials: fixed AWS credentials for tests against a real peer (Ceph RGW), with a
// count of Invalidate() calls (test support, never in the hub).

#include <atomic>
#include <string>
#include <utility>

#include "cloud/credentials.h"

namespace machub::testing {

class StaticCredentials final : public cloud::CredentialsProvider {
 public:
  StaticCredentials(std::string key, std::string secret) {
    creds_.access_key_id = std::move(key);
    creds_.secret_access_key = std::move(secret);
  }
  Result<cloud::Credentials> Get() override { return creds_; }
  void Invalidate() override { ++invalidated; }
  std::string Describe() const override { return "static"; }
  std::atomic<int> invalidated{0};

 private:
  cloud::Credentials creds_;
};

}  // namespace machub::testing
