#include "http/tls_identity.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/beast/core/error.hpp>
#include <utility>

namespace machub::http {

namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;

FileStamp StampOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_ino, st.st_size,
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

Result<std::shared_ptr<const TlsIdentity>> LoadTlsIdentity(const std::string& cert_file,
                                                           const std::string& key_file) {
  auto id = std::make_shared<TlsIdentity>();
  BIO* bio = BIO_new_file(cert_file.c_str(), "r");
  if (bio == nullptr) {
    return Status(ErrorCode::kInvalidArgument, "cannot read TLS certificate " + cert_file);
  }
  id->leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  id->chain = sk_X509_new_null();
  while (id->leaf != nullptr && id->chain != nullptr) {
    X509* next = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (next == nullptr) break;
    if (sk_X509_push(id->chain, next) == 0) X509_free(next);
  }
  BIO_free(bio);
  ERR_clear_error();  // the end of the file is reported as an error
  if (id->leaf == nullptr || id->chain == nullptr) {
    return Status(ErrorCode::kInvalidArgument, "no PEM certificate in " + cert_file);
  }
  bio = BIO_new_file(key_file.c_str(), "r");
  if (bio == nullptr) {
    return Status(ErrorCode::kInvalidArgument, "cannot read TLS private key " + key_file);
  }
  id->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (id->key == nullptr) {
    return Status(ErrorCode::kInvalidArgument, "no PEM private key in " + key_file);
  }
  if (X509_check_private_key(id->leaf, id->key) != 1) {
    ERR_clear_error();
    return Status(ErrorCode::kInvalidArgument,
                  "TLS private key " + key_file + " does not match " + cert_file);
  }
  return std::shared_ptr<const TlsIdentity>(std::move(id));
}

// The subject CN, then the DNS and URI subjectAltNames of a certificate.
std::vector<std::string> CertificateIdentities(X509* cert) {
  std::vector<std::string> out;
  auto add = [&out](const unsigned char* data, int length) {
    if (data == nullptr || length <= 0) return;
    std::string name(reinterpret_cast<const char*>(data), static_cast<size_t>(length));
    // An embedded NUL would let "T01\0.evil" pass as "T01" in C-string comparisons.
    if (name.find('\0') == std::string::npos) out.push_back(std::move(name));
  };
  X509_NAME* subject = X509_get_subject_name(cert);
  const int index =
      subject == nullptr ? -1 : X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index >= 0) {
    ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    unsigned char* utf8 = nullptr;
    const int length = cn == nullptr ? -1 : ASN1_STRING_to_UTF8(&utf8, cn);
    if (length > 0) add(utf8, length);
    OPENSSL_free(utf8);
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type == GEN_DNS || name->type == GEN_URI) {
        const ASN1_IA5STRING* text =
            name->type == GEN_DNS ? name->d.dNSName : name->d.uniformResourceIdentifier;
        add(ASN1_STRING_get0_data(text), ASN1_STRING_length(text));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  return out;
}

Status LoadTlsContext(const ServerOptions& options, std::optional<ssl::context>* out) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    if (!options.tls_client_ca_file.empty()) {
      return Status(ErrorCode::kInvalidArgument,
                    "a TLS client CA needs TLS (a certificate and a private key)");
    }
    return Status::Ok();
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "TLS needs both a certificate chain file and a private key file");
  }
  ssl::context ctx(ssl::context::tls_server);
  beast::error_code ec;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::no_compression | ssl::context::single_dh_use,
                  ec);
  if (ec) return Status(ErrorCode::kInvalidArgument, "TLS options: " + ec.message());
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    return Status(ErrorCode::kInvalidArgument, "cannot require TLS 1.2");
  }
  ctx.use_certificate_chain_file(options.tls_cert_file, ec);
  if (ec) {
    return Status(ErrorCode::kInvalidArgument, "cannot load TLS certificate chain " +
                                                   options.tls_cert_file + ": " + ec.message());
  }
  // The key file's path is fine to report; its content never is.
  ctx.use_private_key_file(options.tls_key_file, ssl::context::pem, ec);
  if (ec) {
    return Status(ErrorCode::kInvalidArgument,
                  "cannot load TLS private key " + options.tls_key_file + ": " + ec.message());
  }
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    return Status(ErrorCode::kInvalidArgument,
                  "TLS private key does not match the certificate " + options.tls_cert_file);
  }
  if (!options.tls_client_ca_file.empty()) {
    // Mutual TLS: no certificate, or one that does not chain to this CA, fails the
    // handshake before any HTTP byte is read.
    ctx.load_verify_file(options.tls_client_ca_file, ec);
    if (ec) {
      return Status(
          ErrorCode::kInvalidArgument,
          "cannot load TLS client CA " + options.tls_client_ca_file + ": " + ec.message());
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.tls_client_ca_file.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx.native_handle(), names);
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    if (ec) return Status(ErrorCode::kInvalidArgument, "TLS verify mode: " + ec.message());
  }
  out->emplace(std::move(ctx));
  return Status::Ok();
}

}  // namespace machub::http
