#include "app/tls_init.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>

#include "core/file.h"

namespace machub::app {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

Status OpenSslError(const std::string& what) {
  return Status(ErrorCode::kInternal, "tls init: " + what + " failed (OpenSSL)");
}

Status IoError(const std::string& what, const std::string& path) {
  return core::ErrnoStatus("tls init: " + what + " " + path, errno);
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// A DNS name of letters, digits, '-' and '.', optionally one leading "*." label.
bool ValidHostName(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  std::string rest = host.rfind("*.", 0) == 0 ? host.substr(2) : host;
  size_t label = 0;
  for (char c : rest) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

Result<PkeyPtr> NewP256Key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generating a P-256 key");
  return key;
}

Result<std::string> PemOfKey(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("writing a private key");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> PemOfCert(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1)
    return OpenSslError("writing a certificate");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// Writes `content` to `path` through `path.tmp`, fsync and rename; fsyncs the folder.
Status WriteFileAtomic(const std::string& dir, const std::string& path, const std::string& content,
                       mode_t mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return IoError("cannot create", tmp);
  ::fchmod(fd, mode);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = IoError("cannot write", tmp);
      ::close(fd);
      return st;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status st = IoError("cannot fsync", tmp);
    ::close(fd);
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return IoError("cannot rename over", path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return IoError("cannot open folder", dir);
  int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) return IoError("cannot fsync folder", dir);
  return Status::Ok();
}

Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return OpenSslError("building extension " + value);
  int rc = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return rc == 1 ? Status::Ok() : OpenSslError("adding extension " + value);
}

// An unsigned certificate for `key`'s public half, issued by `issuer` (itself when null).
Result<X509Ptr> NewCert(EVP_PKEY* key, const std::string& common_name, int days, X509* issuer) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return OpenSslError("X509_new");
  // A random positive 127-bit serial number.
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return OpenSslError("RAND_bytes");
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  bool serial_ok =
      bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
  BN_free(bn);
  if (!serial_ok) return OpenSslError("setting the serial number");
  // Valid from an hour ago (terminals with a slightly late clock) for `days`.
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400) == nullptr) {
    return OpenSslError("setting the validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("machub store"), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1) {
    return OpenSslError("setting the subject");
  }
  X509* issuer_cert = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return OpenSslError("setting the issuer or key");
  }
  RETURN_IF_ERROR(AddExt(cert.get(), issuer_cert, NID_subject_key_identifier, "hash"));
  if (issuer != nullptr) {
    RETURN_IF_ERROR(AddExt(cert.get(), issuer_cert, NID_authority_key_identifier, "keyid:always"));
  }
  return cert;
}

Status Sign(X509* cert, EVP_PKEY* signer) {
  return X509_sign(cert, signer, EVP_sha256()) > 0 ? Status::Ok() : OpenSslError("signing");
}

Result<std::string> ReadFile(const std::string& path) {
  Result<std::string> text = core::ReadFileToString(path);
  if (!text.ok()) return Status(ErrorCode::kIoError, "tls init: " + text.status().message());
  return text;
}

Result<X509Ptr> LoadCert(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return Status(ErrorCode::kInvalidArgument, "tls: no PEM certificate in " + path);
  return cert;
}

Result<PkeyPtr> LoadKey(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return Status(ErrorCode::kInvalidArgument, "tls: no PEM private key in " + path);
  return key;
}

std::string Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) != 1) return {};
  std::string out;
  char hex[4];
  for (unsigned int i = 0; i < n; ++i) {
    std::snprintf(hex, sizeof hex, i == 0 ? "%02X" : ":%02X", md[i]);
    out += hex;
  }
  return out;
}

int64_t NotAfterUnix(X509* cert) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

std::string TlsDir(const std::string& data_dir) { return data_dir + "/tls"; }

Result<TlsInitResult> TlsInit(const TlsInitOptions& options) {
  if (options.hosts.empty() && options.ips.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "tls init: give at least one --host NAME or --ip ADDRESS the terminals use");
  }
  if (options.ca_days < 1 || options.server_days < 1 || options.server_days > options.ca_days) {
    return Status(ErrorCode::kInvalidArgument,
                  "tls init: validity must be at least 1 day, the server's within the CA's");
  }
  std::string san;
  for (const std::string& h : options.hosts) {
    if (!ValidHostName(h)) {
      return Status(ErrorCode::kInvalidArgument, "tls init: \"" + h + "\" is not a DNS host name");
    }
    san += (san.empty() ? "DNS:" : ",DNS:") + h;
  }
  for (const std::string& ip : options.ips) {
    ASN1_OCTET_STRING* parsed = a2i_IPADDRESS(ip.c_str());
    if (parsed == nullptr) {
      return Status(ErrorCode::kInvalidArgument, "tls init: \"" + ip + "\" is not an IP address");
    }
    ASN1_OCTET_STRING_free(parsed);
    san += (san.empty() ? "IP:" : ",IP:") + ip;
  }
  if (::mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return IoError("cannot create folder", options.dir);
  }

  TlsInitResult r;
  r.ca_pem = options.dir + "/ca.pem";
  r.ca_key = options.dir + "/ca.key";
  r.server_pem = options.dir + "/server.pem";
  r.server_key = options.dir + "/server.key";

  X509Ptr ca;
  PkeyPtr ca_key;
  std::string ca_pem_text;
  if (!options.new_ca && FileExists(r.ca_pem) && FileExists(r.ca_key)) {
    ASSIGN_OR_RETURN(ca, LoadCert(r.ca_pem));
    ASSIGN_OR_RETURN(ca_key, LoadKey(r.ca_key));
    if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
      return Status(ErrorCode::kInvalidArgument, "tls init: " + r.ca_key + " does not match " +
                                                     r.ca_pem + " (use --new-ca to replace both)");
    }
    ASSIGN_OR_RETURN(ca_pem_text, PemOfCert(ca.get()));
  } else {
    ASSIGN_OR_RETURN(ca_key, NewP256Key());
    ASSIGN_OR_RETURN(ca, NewCert(ca_key.get(), "machub store CA", options.ca_days, nullptr));
    RETURN_IF_ERROR(
        AddExt(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    RETURN_IF_ERROR(AddExt(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
    RETURN_IF_ERROR(Sign(ca.get(), ca_key.get()));
    ASSIGN_OR_RETURN(std::string key_pem, PemOfKey(ca_key.get()));
    ASSIGN_OR_RETURN(ca_pem_text, PemOfCert(ca.get()));
    // Key first: a crash in between leaves a key without its certificate, which the next
    // run replaces (both are needed to reuse the CA).
    RETURN_IF_ERROR(WriteFileAtomic(options.dir, r.ca_key, key_pem, 0600));
    RETURN_IF_ERROR(WriteFileAtomic(options.dir, r.ca_pem, ca_pem_text, 0644));
    r.ca_created = true;
  }

  ASSIGN_OR_RETURN(PkeyPtr server_key, NewP256Key());
  std::string cn = options.hosts.empty() ? options.ips.front() : options.hosts.front();
  ASSIGN_OR_RETURN(X509Ptr server, NewCert(server_key.get(), cn, options.server_days, ca.get()));
  RETURN_IF_ERROR(AddExt(server.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExt(server.get(), ca.get(), NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(AddExt(server.get(), ca.get(), NID_ext_key_usage, "serverAuth"));
  RETURN_IF_ERROR(AddExt(server.get(), ca.get(), NID_subject_alt_name, san));
  RETURN_IF_ERROR(Sign(server.get(), ca_key.get()));
  ASSIGN_OR_RETURN(std::string server_key_pem, PemOfKey(server_key.get()));
  ASSIGN_OR_RETURN(std::string server_pem_text, PemOfCert(server.get()));
  RETURN_IF_ERROR(WriteFileAtomic(options.dir, r.server_key, server_key_pem, 0600));
  RETURN_IF_ERROR(WriteFileAtomic(options.dir, r.server_pem, server_pem_text + ca_pem_text, 0644));

  r.ca_fingerprint_sha256 = Fingerprint(ca.get());
  r.server_not_after_unix = NotAfterUnix(server.get());
  return r;
}

Result<int64_t> CertificateSecondsLeft(const std::string& path) {
  ASSIGN_OR_RETURN(X509Ptr cert, LoadCert(path));
  return NotAfterUnix(cert.get()) - static_cast<int64_t>(std::time(nullptr));
}

}  // namespace machub::app
