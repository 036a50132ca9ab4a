#pragma once
// `machub tls init`: a store's own certificate authority and the hub's server certificate,
// so that terminals on the shop's LAN reach the API over HTTPS and check whom they talk to.
//
// Files, all PEM, in `dir` (normally `<data_dir>/tls`, created with mode 0700):
//   ca.pem      the store CA certificate (ECDSA P-256, self-signed, CA:TRUE, pathlen 0):
//               what terminals must trust (curl --cacert, the POS's trust store)
//   ca.key      its private key, mode 0600; never leaves the device
//   server.pem  the hub's certificate (ECDSA P-256, serverAuth, SANs = the host names and
//               IP addresses given), followed by ca.pem: the chain the hub serves
//   server.key  its private key, mode 0600
// Each file is written to a temporary name, fsync'd and renamed, so a crash leaves the old
// or the new file. An existing CA (ca.pem + ca.key) is kept unless `new_ca` is set: running
// it again renews the server certificate under the same CA, so terminals need no change.
// The server certificate is written last (key then chain), and a hub watching the files
// reloads it (http::Server, see server.h).
//
// Thread-safety: stateless; two concurrent runs on the same folder are not supported.
// Errors: kInvalidArgument for an unusable host name, IP address or validity; kIoError for
// file-system failures; kInternal when OpenSSL fails.

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace machub::app {

struct TlsInitOptions {
  std::string dir;                 // output folder (created when missing)
  std::vector<std::string> hosts;  // DNS SANs, e.g. "hub.store42.lan", "localhost"
  std::vector<std::string> ips;    // IP SANs (IPv4 or IPv6 literals), e.g. "192.168.1.10"
  int ca_days = 3650;              // validity of a newly created CA
  int server_days = 397;           // validity of the server certificate (browser limit)
  bool new_ca = false;             // replace an existing CA (terminals must trust the new one)
};

struct TlsInitResult {
  std::string ca_pem;  // paths of the files written or kept
  std::string ca_key;
  std::string server_pem;
  std::string server_key;
  bool ca_created = false;  // false: the existing CA was kept
  // SHA-256 of the CA certificate's DER as upper-case hex pairs joined by ':' (the form of
  // `openssl x509 -fingerprint -sha256`), to compare on a terminal.
  std::string ca_fingerprint_sha256;
  int64_t server_not_after_unix = 0;
};

// "<data_dir>/tls".
std::string TlsDir(const std::string& data_dir);

// Creates (or reuses) the CA and issues a fresh server certificate; see the file comment.
// At least one host or IP is required.
Result<TlsInitResult> TlsInit(const TlsInitOptions& options);

// Seconds until the certificate in the PEM file `path` expires (negative when expired).
// kIoError when the file cannot be read, kInvalidArgument when it holds no certificate.
Result<int64_t> CertificateSecondsLeft(const std::string& path);

}  // namespace machub::app
