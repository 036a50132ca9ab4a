#pragma once
// Helpers shared by the http tests: a blocking loopback HTTP client, waiting for a
// condition with a deadline, and a throw-away self-signed certificate. Test-only.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

namespace machub::http::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using StringResponse = bhttp::response<bhttp::string_body>;

// Polls `pred` until it holds or `timeout` passes; true when it held.
inline bool WaitFor(const std::function<bool()>& pred,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// A blocking HTTP/1.1 client on one loopback connection.
class Client {
 public:
  explicit Client(uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }

  tcp::socket& socket() { return socket_; }

  void SendRaw(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }

  // Sends a request; adds Host, Content-Length (when there is a body) and the headers.
  void Send(std::string_view method, std::string_view target, std::string body = {},
            std::vector<std::pair<std::string, std::string>> headers = {}, unsigned version = 11) {
    bhttp::request<bhttp::string_body> req;
    req.method_string(beast::string_view(method.data(), method.size()));
    req.target(beast::string_view(target.data(), target.size()));
    req.version(version);
    req.set(bhttp::field::host, "127.0.0.1");
    for (auto& [name, value] : headers) req.set(name, value);
    req.body() = std::move(body);
    if (!req.body().empty() || method == "POST") req.prepare_payload();
    bhttp::write(socket_, req);
  }

  // Reads one response; `ec` is set (and the response empty) when the connection failed.
  StringResponse Read(beast::error_code* ec_out = nullptr) {
    StringResponse res;
    beast::error_code ec;
    bhttp::read(socket_, buffer_, res, ec);
    if (ec_out != nullptr) *ec_out = ec;
    return res;
  }

  StringResponse Call(std::string_view method, std::string_view target, std::string body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    Send(method, target, std::move(body), std::move(headers));
    return Read();
  }

  // True when the server closes the connection (EOF or reset) within `timeout`; data
  // that arrives meanwhile is discarded.
  bool WaitClosed(std::chrono::milliseconds timeout) {
    if (buffer_.size() > 0) buffer_.consume(buffer_.size());
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{socket_.native_handle(), POLLIN, 0};
      const int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
      if (n <= 0) continue;
      char scratch[4096];
      const ssize_t got = ::recv(socket_.native_handle(), scratch, sizeof(scratch), 0);
      if (got <= 0) return true;
    }
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

// A self-signed EC P-256 certificate for CN=localhost, written as PEM files into a
// fresh temporary folder (removed by the destructor).
class TestCertificate {
 public:
  TestCertificate() {
    char tmpl[] = "/tmp/machub-http-tls-XXXXXX";
    dir_ = mkdtemp(tmpl);
    cert_file_ = dir_ + "/cert.pem";
    key_file_ = dir_ + "/key.pem";
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    ok_ = X509_sign(cert, key, EVP_sha256()) > 0;
    FILE* f = fopen(cert_file_.c_str(), "w");
    ok_ = ok_ && f != nullptr && PEM_write_X509(f, cert) == 1;
    if (f != nullptr) fclose(f);
    f = fopen(key_file_.c_str(), "w");
    ok_ = ok_ && f != nullptr &&
          PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    if (f != nullptr) fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  ~TestCertificate() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  const std::string& cert_file() const { return cert_file_; }
  const std::string& key_file() const { return key_file_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string cert_file_;
  std::string key_file_;
  bool ok_ = false;
};

}  // namespace machub::http::testing
