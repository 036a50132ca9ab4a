#include "cloud/credentials.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "cloud/url.h"
#include "core/file.h"
#include "core/log.h"
#include "core/strings.h"
#include "core/time_format.h"

namespace machub::cloud {
namespace {

constexpr size_t kMaxAnswerBytes = 64 * 1024;

using Getenv = std::function<const char*(const char*)>;

std::string Env(const Getenv& getenv, const char* name) {
  const char* v = getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// A copy of `text` without its leading and trailing blanks (core/strings.h).
std::string Trimmed(std::string_view text) { return std::string(core::TrimWhitespace(text)); }

// ---------------------------------------------------------------------------------------
// Static sources: explicit configuration, environment, shared files.

class StaticProvider final : public CredentialsProvider {
 public:
  StaticProvider(Credentials creds, std::string description)
      : creds_(std::move(creds)), description_(std::move(description)) {}
  Result<Credentials> Get() override { return creds_; }
  // Nothing to drop: the same keys would come back.
  void Invalidate() override {}
  std::string Describe() const override { return description_; }

 private:
  const Credentials creds_;
  const std::string description_;
};

// profile name -> key -> value. `config_file`: sections are "[profile name]" or
// "[default]" (other kinds, like "[sso-session x]", are not profiles); in the credentials
// file every "[name]" is a profile.
using Ini = std::map<std::string, std::map<std::string, std::string>>;

Ini ParseIni(std::string_view text, bool config_file) {
  Ini out;
  std::optional<std::string> section;  // nullopt: not a profile section, skip its keys
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view raw = text.substr(pos, end - pos);
    pos = end + 1;
    // Indented lines continue a nested value ("s3 =\n  addressing_style = path"); nested
    // settings never hold credentials.
    if (!raw.empty() && (raw[0] == ' ' || raw[0] == '\t')) continue;
    const std::string line = Trimmed(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      const size_t close = line.find(']');
      if (close == std::string::npos) {
        section.reset();
        continue;
      }
      std::string name = Trimmed(std::string_view(line).substr(1, close - 1));
      if (config_file) {
        if (name.rfind("profile", 0) == 0 && name.size() > 7 && IsBlank(name[7])) {
          name = Trimmed(std::string_view(name).substr(8));
        } else if (name != "default") {
          section.reset();
          continue;
        }
      }
      section = name;
      out[name];  // a profile with no keys still exists
      continue;
    }
    if (!section) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = core::AsciiLower(Trimmed(std::string_view(line).substr(0, eq)));
    std::string value = Trimmed(std::string_view(line).substr(eq + 1));
    // Inline comments need whitespace before '#'/';' (keys and secrets never hold spaces).
    for (size_t i = 1; i < value.size(); ++i) {
      if ((value[i] == '#' || value[i] == ';') && IsBlank(value[i - 1])) {
        value = Trimmed(std::string_view(value).substr(0, i));
        break;
      }
    }
    out[*section][std::move(key)] = std::move(value);
  }
  return out;
}

std::string ExpandHome(const std::string& path, const std::string& home) {
  if (path == "~" || path.rfind("~/", 0) == 0) return home + path.substr(1);
  return path;
}

struct ProfileLookup {
  std::optional<Credentials> creds;
  bool profile_exists = false;
};

// Looks up `profile` in one file. kInvalidArgument for an unreadable file or a profile
// with only half of a key pair. Messages name the file and profile, never a value.
Result<ProfileLookup> LookUpProfile(const std::string& path, bool config_file,
                                    const std::string& profile) {
  ProfileLookup out;
  if (path.empty()) return out;
  Result<std::string> read = core::ReadFileToString(path);
  if (!read.ok()) {
    if (read.status().code() == ErrorCode::kNotFound) return out;
    return Status(ErrorCode::kInvalidArgument, "AWS shared file: " + read.status().message());
  }
  const std::string text = std::move(read).value();
  const Ini ini = ParseIni(text, config_file);
  const auto section = ini.find(profile);
  if (section == ini.end()) return out;
  out.profile_exists = true;
  const auto& kv = section->second;
  const auto id = kv.find("aws_access_key_id");
  const auto secret = kv.find("aws_secret_access_key");
  const bool has_id = id != kv.end() && !id->second.empty();
  const bool has_secret = secret != kv.end() && !secret->second.empty();
  if (has_id != has_secret) {
    return Status(ErrorCode::kInvalidArgument,
                  "profile \"" + profile + "\" in " + path + " has " +
                      (has_id ? "aws_access_key_id but no aws_secret_access_key"
                              : "aws_secret_access_key but no aws_access_key_id"));
  }
  if (has_id) {
    Credentials c;
    c.access_key_id = id->second;
    c.secret_access_key = secret->second;
    if (const auto token = kv.find("aws_session_token"); token != kv.end()) {
      c.session_token = token->second;
    }
    out.creds = std::move(c);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Container credentials (Greengrass Token Exchange Service, ECS).

bool IsAllowedPlainHttpIpv4(const in_addr& addr) {
  const uint32_t a = ntohl(addr.s_addr);
  return (a >> 24) == 127 || a == 0xA9FEAA02u /*169.254.170.2*/ ||
         a == 0xA9FEAA17u /*169.254.170.23*/;
}

bool IsLoopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return false;
}

// A host name is acceptable for plain http only if every address it resolves to is a
// loopback one: a name pointing anywhere else would send the token over the network.
bool ResolvesOnlyToLoopback(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return false;
  bool all_loopback = true;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (!IsLoopback(ai->ai_addr)) all_loopback = false;
  }
  ::freeaddrinfo(res);
  return all_loopback;
}

struct Endpoint {
  std::string url;
  std::string display;  // scheme://host[:port]/path: no user info, no query
  bool force_ipv4 = false;
  bool local = false;  // loopback or link-local: never through a proxy
};

// (libcurl's global init runs in ParseHttpUrl, before the first request.)

constexpr const char* kFullUriVar = "AWS_CONTAINER_CREDENTIALS_FULL_URI";

Result<Endpoint> ParseEndpoint(const std::string& uri) {
  Result<HttpUrl> url = ParseHttpUrl(uri);
  if (!url.ok()) {
    return Status(ErrorCode::kInvalidArgument,
                  std::string(kFullUriVar) + " must be a valid http or https URL");
  }
  const std::string& scheme = url->scheme;
  const std::string& bare = url->host;  // IPv6 without brackets
  const std::string host = bare.find(':') != std::string::npos ? "[" + bare + "]" : bare;
  const std::string& port = url->port;
  const std::string& path = url->path;
  Endpoint ep;
  ep.url = uri;
  ep.display = scheme + "://" + host + (port.empty() ? "" : ":" + port) + path;
  in_addr v4{};
  in6_addr v6{};
  bool allowed_http = false;
  if (inet_pton(AF_INET, bare.c_str(), &v4) == 1) {
    allowed_http = IsAllowedPlainHttpIpv4(v4);
    ep.local = allowed_http;
  } else if (inet_pton(AF_INET6, bare.c_str(), &v6) == 1) {
    allowed_http = IN6_IS_ADDR_LOOPBACK(&v6);
    ep.local = allowed_http;
  } else {
    // The Token Exchange Service listens on 127.0.0.1 only; "localhost" may resolve to ::1
    // first, and a client that tries ::1 first fails. Connect over IPv4.
    ep.force_ipv4 = bare == "localhost";
    if (scheme == "http" || ep.force_ipv4) {
      allowed_http = ResolvesOnlyToLoopback(bare);
      ep.local = allowed_http;
    }
  }
  if (scheme == "http" && !allowed_http) {
    return Status(ErrorCode::kInvalidArgument,
                  std::string(kFullUriVar) + " " + ep.display +
                      ": plain http is allowed only to loopback (127.0.0.0/8, ::1), "
                      "169.254.170.2 or 169.254.170.23; use https");
  }
  return ep;
}

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t bytes = size * n;
  if (body->size() + bytes > kMaxAnswerBytes) return 0;  // makes curl fail: CURLE_WRITE_ERROR
  body->append(data, bytes);
  return bytes;
}

Result<Credentials> ParseCredentialsJson(const std::string& body, const std::string& where) {
  auto malformed = [&](const std::string& why) {
    return Status(ErrorCode::kUnavailable,
                  "credentials endpoint " + where + " answered malformed JSON: " + why);
  };
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return malformed("not JSON");
  if (!j.is_object()) return malformed("not a JSON object");
  auto text = [&](const char* name) -> std::optional<std::string> {
    const auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  Credentials c;
  const auto id = text("AccessKeyId");
  const auto secret = text("SecretAccessKey");
  if (!id || id->empty()) return malformed("no AccessKeyId string");
  if (!secret || secret->empty()) return malformed("no SecretAccessKey string");
  c.access_key_id = *id;
  c.secret_access_key = *secret;
  if (j.contains("Token")) {
    const auto token = text("Token");
    if (!token) return malformed("Token is not a string");
    c.session_token = *token;
  }
  if (j.contains("Expiration")) {
    const auto expiration = text("Expiration");
    if (!expiration) return malformed("Expiration is not a string");
    auto ms = core::ParseRfc3339(*expiration);
    if (!ms.ok()) return malformed("Expiration is not an ISO-8601 UTC time");
    // 0 means "never expires" in Credentials; an endpoint saying 1970 means "expired".
    c.expires_at_ms = *ms == 0 ? 1 : *ms;
  }
  return c;
}

class ContainerProvider final : public CredentialsProvider {
 public:
  ContainerProvider(Endpoint endpoint, std::string token_file, std::string token,
                    const CredentialsOptions& options, const core::Clock* clock)
      : endpoint_(std::move(endpoint)),
        token_file_(std::move(token_file)),
        token_(std::move(token)),
        refresh_margin_ms_(options.refresh_margin_ms),
        refresh_retry_ms_(options.refresh_retry_ms),
        timeout_ms_(options.http_timeout_ms),
        clock_(clock) {}

  Result<Credentials> Get() override {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = clock_->NowMs();
    if (cached_ && !InRefreshWindow(*cached_, now)) return *cached_;
    const bool still_valid = cached_ && IsValid(*cached_, now);
    // While the cached credentials still work, try the endpoint at most once per
    // refresh_retry_ms: each attempt can block a caller for up to the HTTP timeout.
    if (still_valid && last_attempt_ms_ && now - *last_attempt_ms_ < refresh_retry_ms_) {
      return *cached_;
    }
    last_attempt_ms_ = now;
    Result<Credentials> fresh = Fetch();
    if (fresh.ok()) {
      cached_ = *fresh;
      return *cached_;
    }
    if (still_valid) {
      core::LogWarn("credentials_refresh_failed",
                    {{"source", "container"},
                     {"endpoint", endpoint_.display},
                     {"error", fresh.status().ToString()},
                     {"cached_valid_for_ms",
                      cached_->expires_at_ms == 0 ? int64_t{-1} : cached_->expires_at_ms - now}});
      return *cached_;
    }
    return fresh.status();
  }

  void Invalidate() override {
    std::lock_guard<std::mutex> lock(mu_);
    cached_.reset();
    last_attempt_ms_.reset();
  }

  std::string Describe() const override { return "container"; }

 private:
  bool IsValid(const Credentials& c, int64_t now) const {
    return c.expires_at_ms == 0 || now < c.expires_at_ms;
  }
  bool InRefreshWindow(const Credentials& c, int64_t now) const {
    return c.expires_at_ms != 0 && now >= c.expires_at_ms - refresh_margin_ms_;
  }

  // Re-read at every refresh: Greengrass and ECS may rotate the token file.
  Result<std::string> Token() const {
    if (token_file_.empty()) return token_;
    Result<std::string> read = core::ReadFileToString(token_file_);
    if (!read.ok()) {
      return Status(ErrorCode::kInvalidArgument,
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: " + read.status().message());
    }
    const std::string text = std::move(read).value();
    std::string token = Trimmed(text);
    if (token.empty()) {
      return Status(ErrorCode::kInvalidArgument,
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " + token_file_ + " is empty");
    }
    return token;
  }

  Result<Credentials> Fetch() const {
    ASSIGN_OR_RETURN(const std::string token, Token());
    if (token.find_first_of("\r\n") != std::string::npos) {
      return Status(ErrorCode::kInvalidArgument,
                    "the container authorization token contains a line break");
    }
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
    if (!curl) return Status(ErrorCode::kInternal, "curl_easy_init failed");
    curl_slist* headers = nullptr;
    // The Token Exchange Service wants the raw token, no "Bearer" scheme.
    const std::string authorization = "Authorization: " + token;
    if (!token.empty()) headers = curl_slist_append(headers, authorization.c_str());
    headers = curl_slist_append(headers, "Accept: application/json");
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers,
                                                                             &curl_slist_free_all);
    std::string body;
    CURL* h = curl.get();
    curl_easy_setopt(h, CURLOPT_URL, endpoint_.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // never carry the token elsewhere
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms_));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    if (endpoint_.force_ipv4) curl_easy_setopt(h, CURLOPT_IPRESOLVE, CURL_IPRESOLVE_V4);
    // Greengrass passes proxy variables to components; a local endpoint must not go there.
    if (endpoint_.local) curl_easy_setopt(h, CURLOPT_NOPROXY, "*");

    const CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      std::string why = curl_easy_strerror(rc);
      if (rc == CURLE_WRITE_ERROR) why = "answer larger than 64 KiB";
      return Status(ErrorCode::kUnavailable,
                    "credentials endpoint " + endpoint_.display + " unreachable: " + why);
    }
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (code == 401 || code == 403) {
      return Status(ErrorCode::kUnauthorized, "credentials endpoint " + endpoint_.display +
                                                  " refused the authorization token (HTTP " +
                                                  std::to_string(code) + ")");
    }
    if (code < 200 || code > 299) {
      // 5xx, 429 and anything unexpected: retry later (504 is TES's upstream timeout).
      return Status(ErrorCode::kUnavailable, "credentials endpoint " + endpoint_.display +
                                                 " answered HTTP " + std::to_string(code));
    }
    return ParseCredentialsJson(body, endpoint_.display);
  }

  const Endpoint endpoint_;
  const std::string token_file_;
  const std::string token_;
  const int64_t refresh_margin_ms_;
  const int64_t refresh_retry_ms_;
  const int64_t timeout_ms_;
  const core::Clock* const clock_;

  std::mutex mu_;
  std::optional<Credentials> cached_;
  std::optional<int64_t> last_attempt_ms_;
};

}  // namespace

Result<std::unique_ptr<CredentialsProvider>> MakeDefaultCredentialsProvider(
    const CredentialsOptions& options) {
  if (options.refresh_margin_ms < 0 || options.refresh_retry_ms < 0 ||
      options.http_timeout_ms <= 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "credentials: refresh_margin_ms and refresh_retry_ms must be >= 0, "
                  "http_timeout_ms > 0");
  }
  const Getenv getenv = options.getenv ? options.getenv : Getenv(&::getenv);
  const core::Clock* clock = options.clock != nullptr ? options.clock : &core::SystemClock();

  // 1. Explicit configuration.
  if (!options.access_key_id.empty() || !options.secret_access_key.empty() ||
      !options.session_token.empty()) {
    if (options.access_key_id.empty() || options.secret_access_key.empty()) {
      return Status(ErrorCode::kInvalidArgument,
                    "configured credentials need both an access key id and a secret key");
    }
    return std::unique_ptr<CredentialsProvider>(std::make_unique<StaticProvider>(
        Credentials{options.access_key_id, options.secret_access_key, options.session_token, 0},
        "config"));
  }

  // 2. Environment.
  const std::string env_id = Env(getenv, "AWS_ACCESS_KEY_ID");
  const std::string env_secret = Env(getenv, "AWS_SECRET_ACCESS_KEY");
  if (!env_id.empty() || !env_secret.empty()) {
    if (env_id.empty() || env_secret.empty()) {
      return Status(ErrorCode::kInvalidArgument,
                    env_id.empty() ? "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"
                                   : "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    }
    return std::unique_ptr<CredentialsProvider>(std::make_unique<StaticProvider>(
        Credentials{env_id, env_secret, Env(getenv, "AWS_SESSION_TOKEN"), 0}, "environment"));
  }

  // 3. Shared files.
  const std::string home = Env(getenv, "HOME");
  const std::string explicit_profile = Env(getenv, "AWS_PROFILE");
  const std::string profile = explicit_profile.empty() ? "default" : explicit_profile;
  std::string credentials_file = Env(getenv, "AWS_SHARED_CREDENTIALS_FILE");
  std::string config_file = Env(getenv, "AWS_CONFIG_FILE");
  if (credentials_file.empty() && !home.empty()) credentials_file = home + "/.aws/credentials";
  if (config_file.empty() && !home.empty()) config_file = home + "/.aws/config";
  credentials_file = ExpandHome(credentials_file, home);
  config_file = ExpandHome(config_file, home);
  ASSIGN_OR_RETURN(ProfileLookup from_credentials,
                   LookUpProfile(credentials_file, /*config_file=*/false, profile));
  std::optional<Credentials> from_files = from_credentials.creds;
  bool profile_exists = from_credentials.profile_exists;
  if (!from_files) {
    ASSIGN_OR_RETURN(ProfileLookup from_config,
                     LookUpProfile(config_file, /*config_file=*/true, profile));
    from_files = from_config.creds;
    profile_exists = profile_exists || from_config.profile_exists;
  }
  if (from_files) {
    return std::unique_ptr<CredentialsProvider>(
        std::make_unique<StaticProvider>(*from_files, "profile:" + profile));
  }
  if (!explicit_profile.empty()) {
    // Someone chose this profile on purpose: falling through to another identity would hide
    // the mistake.
    return Status(ErrorCode::kInvalidArgument,
                  "AWS_PROFILE=" + profile +
                      (profile_exists ? ": the profile has no aws_access_key_id/"
                                        "aws_secret_access_key (role, SSO and process "
                                        "profiles are not supported)"
                                      : ": no such profile") +
                      " in " +
                      (credentials_file.empty() ? "(no credentials file)" : credentials_file) +
                      " or " + (config_file.empty() ? "(no config file)" : config_file));
  }

  // 4. Container credentials.
  const std::string full_uri = Env(getenv, kFullUriVar);
  if (!full_uri.empty()) {
    ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(full_uri));
    return std::unique_ptr<CredentialsProvider>(std::make_unique<ContainerProvider>(
        std::move(endpoint), Env(getenv, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
        Env(getenv, "AWS_CONTAINER_AUTHORIZATION_TOKEN"), options, clock));
  }

  return Status(
      ErrorCode::kInvalidArgument,
      "no AWS credentials found; looked at: configured access key, "
      "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile \"" +
          profile + "\" in " +
          (credentials_file.empty() ? "(no credentials file: HOME unset)" : credentials_file) +
          " and " + (config_file.empty() ? "(no config file)" : config_file) +
          ", AWS_CONTAINER_CREDENTIALS_FULL_URI");
}

}  // namespace machub::cloud
