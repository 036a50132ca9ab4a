#pragma once
// The TLS material of the HTTP server (server.h): the certificate chain and key as loaded
// from their PEM files (for renewal without a restart: a session installs the newest
// identity), the stamp that tells a replaced file from the loaded one, the server's
// context (TLS 1.2+, optional client certificates), and the names a client certificate
// carries. Internal to the http module; thread-safe (no shared state).

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/types.h>

#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "http/server.h"

namespace machub::http {

// A certificate chain and its key as read from the PEM files, shared by the sessions that
// install it into their SSL object (which takes its own references).
struct TlsIdentity {
  X509* leaf = nullptr;
  STACK_OF(X509) * chain = nullptr;  // the certificates after the leaf (may be empty)
  EVP_PKEY* key = nullptr;
  TlsIdentity() = default;
  TlsIdentity(const TlsIdentity&) = delete;
  TlsIdentity& operator=(const TlsIdentity&) = delete;
  ~TlsIdentity() {
    X509_free(leaf);
    if (chain != nullptr) sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

// What tells a replaced file from the one loaded: inode, size and modification time.
struct FileStamp {
  ino_t inode = 0;
  off_t size = -1;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

// The stamp of `path` now (the default FileStamp when it cannot be read).
FileStamp StampOf(const std::string& path);

// The chain and key of two PEM files; kInvalidArgument naming the file (never its content)
// when one cannot be read or the key does not match the leaf certificate.
Result<std::shared_ptr<const TlsIdentity>> LoadTlsIdentity(const std::string& cert_file,
                                                           const std::string& key_file);

// The subject CN, then the DNS and URI subjectAltNames of a certificate (names with an
// embedded NUL are left out).
std::vector<std::string> CertificateIdentities(X509* cert);

// The server's TLS context from options.tls_*: nothing (*out stays empty) without a
// certificate and key; kInvalidArgument for half a configuration, a client CA without TLS,
// or a file that does not load.
Status LoadTlsContext(const ServerOptions& options, std::optional<boost::asio::ssl::context>* out);

}  // namespace machub::http
