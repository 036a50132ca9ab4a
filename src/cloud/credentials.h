#pragma once
// Where AWS credentials come from, in the order an AWS SDK looks:
//   1. explicit configuration (access key + secret [+ session token]);
//   2. environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN;
//   3. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
//      AWS_CONFIG_FILE (~/.aws/config), profile AWS_PROFILE (default "default");
//   4. container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI with
//      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (wins) or AWS_CONTAINER_AUTHORIZATION_TOKEN —
//      what Greengrass' Token Exchange Service provides. Plain http only to loopback
//      (127.0.0.0/8, ::1), 169.254.170.2 or 169.254.170.23; https anywhere.
// Temporary credentials are refreshed well before Expiration. Credentials and tokens are
// never logged and never appear in a Status message.

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "cloud/sigv4.h"
#include "core/clock.h"
#include "core/status.h"

namespace machub::cloud {

class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  // Thread-safe. Current credentials, refreshing when they expire within the refresh
  // margin. kUnavailable (retryable) when an endpoint is unreachable or answers 5xx;
  // kUnauthorized when it refuses (403); kInvalidArgument for bad configuration.
  virtual Result<Credentials> Get() = 0;
  // Drop cached credentials (after an ExpiredToken/InvalidAccessKeyId answer).
  virtual void Invalidate() = 0;
  // "config" | "environment" | "profile:<name>" | "container" — never a secret.
  virtual std::string Describe() const = 0;
};

struct CredentialsOptions {
  std::string access_key_id;  // explicit configuration (1.)
  std::string secret_access_key;
  std::string session_token;
  int64_t refresh_margin_ms = 15 * 60 * 1000;  // refresh this long before Expiration
  int64_t http_timeout_ms = 5000;              // whole request (connect + answer)
  // While cached credentials are still valid, contact the endpoint at most this often:
  // a failing refresh keeps the cached ones (a warning is logged) and is retried later
  // instead of blocking every Get() for the HTTP timeout. Expired credentials are always
  // refreshed at once.
  int64_t refresh_retry_ms = 10 * 1000;
  const core::Clock* clock = nullptr;  // null: the system clock; must outlive the provider
  // Environment lookup, injectable for tests (null: getenv). Consulted only inside
  // MakeDefaultCredentialsProvider; the provider keeps what it read.
  std::function<const char*(const char*)> getenv;
};

// Picks the first source in the order above that is configured. kInvalidArgument with a
// message listing what was looked at when none is, and for a half-configured source
// (an access key without its secret in the options, the environment or a profile; an
// AWS_PROFILE naming a profile without static keys; an unreadable shared file; a
// container URI that is not http(s) or is plain http to a host not allowed above).
// Explicit, environment and profile credentials are read once, here, and never expire
// (Invalidate does nothing for them). Shared files: INI, "[name]" in the credentials file,
// "[profile name]" or "[default]" in the config file, keys aws_access_key_id,
// aws_secret_access_key, aws_session_token; the credentials file wins for the same profile.
// Container: the endpoint is contacted on the first Get(), not here; the token file is
// re-read (and trimmed) at every refresh; "localhost" is reached over IPv4; no proxy is
// used for loopback or link-local endpoints; redirects are not followed. Answers: 2xx with
// {"AccessKeyId","SecretAccessKey","Token","Expiration"} (Expiration ISO-8601 UTC;
// without it the credentials never expire); 401/403 -> kUnauthorized; connection failure,
// timeout, other statuses and malformed JSON -> kUnavailable.
Result<std::unique_ptr<CredentialsProvider>> MakeDefaultCredentialsProvider(
    const CredentialsOptions& options);

}  // namespace machub::cloud
