#include "app/tls_init.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace machub::app {
namespace {

class TlsInitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/machub-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    opts_.dir = root_ + "/tls";
    opts_.hosts = {"hub.store42.lan", "localhost"};
    opts_.ips = {"127.0.0.1", "::1"};
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  static X509* ReadCert(const std::string& path, int index = 0) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) return nullptr;
    X509* cert = nullptr;
    for (int i = 0; i <= index; ++i) {
      X509_free(cert);
      cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    }
    std::fclose(f);
    return cert;
  }
  static int Mode(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
  }

  std::string root_;
  TlsInitOptions opts_;
};

TEST_F(TlsInitTest, ServerCertificateVerifiesAgainstTheCaForEverySan) {
  auto r = TlsInit(opts_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->ca_created);
  EXPECT_EQ(r->ca_fingerprint_sha256.size(), 32u * 3 - 1);
  EXPECT_EQ(Mode(r->ca_key), 0600);
  EXPECT_EQ(Mode(r->server_key), 0600);
  EXPECT_EQ(Mode(opts_.dir), 0700);

  X509* ca = ReadCert(r->ca_pem);
  X509* leaf = ReadCert(r->server_pem, 0);
  X509* chained_ca = ReadCert(r->server_pem, 1);
  ASSERT_NE(ca, nullptr);
  ASSERT_NE(leaf, nullptr);
  ASSERT_NE(chained_ca, nullptr);
  EXPECT_EQ(X509_cmp(ca, chained_ca), 0) << "server.pem must carry the CA after the leaf";

  // ECDSA P-256 keys for both.
  for (X509* c : {ca, leaf}) {
    EVP_PKEY* key = X509_get0_pubkey(c);
    ASSERT_NE(key, nullptr);
    EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
    char group[64] = {};
    size_t len = 0;
    ASSERT_EQ(EVP_PKEY_get_group_name(key, group, sizeof group, &len), 1);
    EXPECT_STREQ(group, "prime256v1");
  }
  EXPECT_EQ(X509_check_ca(ca), 1);
  EXPECT_EQ(X509_check_ca(leaf), 0);

  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  ASSERT_EQ(X509_STORE_CTX_init(ctx, store, leaf, nullptr), 1);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  EXPECT_EQ(X509_verify_cert(ctx), 1)
      << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);

  EXPECT_EQ(X509_check_host(leaf, "hub.store42.lan", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(leaf, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(leaf, "other.lan", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "10.0.0.1", 0), 0);

  auto left = CertificateSecondsLeft(r->server_pem);
  ASSERT_TRUE(left.ok());
  EXPECT_GT(*left, 396LL * 86400);
  EXPECT_LE(*left, 397LL * 86400);
  X509_free(ca);
  X509_free(leaf);
  X509_free(chained_ca);
}

TEST_F(TlsInitTest, RunningAgainRenewsTheServerCertificateUnderTheSameCa) {
  auto first = TlsInit(opts_);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  X509* leaf1 = ReadCert(first->server_pem);
  auto second = TlsInit(opts_);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->ca_created);
  EXPECT_EQ(first->ca_fingerprint_sha256, second->ca_fingerprint_sha256);
  X509* leaf2 = ReadCert(second->server_pem);
  ASSERT_NE(leaf1, nullptr);
  ASSERT_NE(leaf2, nullptr);
  EXPECT_NE(X509_cmp(leaf1, leaf2), 0) << "a new server certificate each run";

  opts_.new_ca = true;
  auto third = TlsInit(opts_);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_TRUE(third->ca_created);
  EXPECT_NE(third->ca_fingerprint_sha256, first->ca_fingerprint_sha256);
  X509_free(leaf1);
  X509_free(leaf2);
}

TEST_F(TlsInitTest, RefusesBadNamesAddressesAndValidity) {
  TlsInitOptions o = opts_;
  o.hosts = {};
  o.ips = {};
  EXPECT_EQ(TlsInit(o).status().code(), ErrorCode::kInvalidArgument);
  o = opts_;
  o.hosts = {"bad host"};
  EXPECT_EQ(TlsInit(o).status().code(), ErrorCode::kInvalidArgument);
  o.hosts = {"a..b"};
  EXPECT_EQ(TlsInit(o).status().code(), ErrorCode::kInvalidArgument);
  o = opts_;
  o.ips = {"300.1.1.1"};
  EXPECT_EQ(TlsInit(o).status().code(), ErrorCode::kInvalidArgument);
  o = opts_;
  o.server_days = 0;
  EXPECT_EQ(TlsInit(o).status().code(), ErrorCode::kInvalidArgument);
  // Nothing was written by a refused run.
  EXPECT_FALSE(std::filesystem::exists(opts_.dir + "/ca.pem"));
}

TEST_F(TlsInitTest, MismatchedCaKeyIsAnErrorNotASilentNewCa) {
  auto first = TlsInit(opts_);
  ASSERT_TRUE(first.ok());
  // Replace ca.key with the server key: a CA that no longer matches its key.
  std::filesystem::copy_file(first->server_key, first->ca_key,
                             std::filesystem::copy_options::overwrite_existing);
  auto again = TlsInit(opts_);
  EXPECT_EQ(again.status().code(), ErrorCode::kInvalidArgument);
}

TEST(TlsDirTest, IsUnderTheDataFolder) {
  EXPECT_EQ(TlsDir("/var/lib/machub"), "/var/lib/machub/tls");
}

}  // namespace
}  // namespace machub::app
