#include "app/http_client.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <optional>

namespace machub::app {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

Status Unavailable(const Url& url, const std::string& what, const beast::error_code& ec) {
  std::string msg = "cannot reach " + std::string(url.https ? "https://" : "http://") +
                    url.HostHeader() + ": " + what + ": ";
  msg += ec == beast::error::timeout ? std::string("timed out") : ec.message();
  return Status(ErrorCode::kUnavailable, msg);
}

bhttp::request<bhttp::empty_body> BuildRequest(
    const Url& url, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, url.path + std::string(target), 11};
  req.set(bhttp::field::host, url.HostHeader());
  req.set(bhttp::field::user_agent, "machub-cli");
  req.set(bhttp::field::accept, "application/json");
  for (const auto& [name, value] : headers) req.set(name, value);
  return req;
}

}  // namespace

std::string Url::HostHeader() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + port;
}

Result<Url> ParseUrl(std::string_view text) {
  Url url;
  std::string_view rest;
  if (text.rfind("http://", 0) == 0) {
    rest = text.substr(7);
  } else if (text.rfind("https://", 0) == 0) {
    url.https = true;
    rest = text.substr(8);
  } else {
    return Status(ErrorCode::kInvalidArgument,
                  "URL must start with http:// or https://: " + std::string(text));
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.find_first_of("?#") != std::string_view::npos) {
    return Status(ErrorCode::kInvalidArgument, "URL must not have a query: " + std::string(text));
  }
  url.path = std::string(path);
  std::string_view host;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Status(ErrorCode::kInvalidArgument, "URL has an unclosed '[': " + std::string(text));
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return Status(ErrorCode::kInvalidArgument, "bad URL authority: " + std::string(text));
      }
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (host.empty() || authority.find('@') != std::string_view::npos) {
    return Status(ErrorCode::kInvalidArgument, "URL has no host: " + std::string(text));
  }
  if (port.empty()) port = url.https ? "443" : "80";
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoi(std::string(port)) > 65535) {
    return Status(ErrorCode::kInvalidArgument, "URL has a bad port: " + std::string(text));
  }
  url.host = std::string(host);
  url.port = std::string(port);
  return url;
}

Result<HttpAnswer> HttpGet(const Url& url, std::string_view target,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           const HttpClientOptions& options) {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) return Unavailable(url, "resolve", ec);
  const auto timeout = std::chrono::milliseconds(options.timeout_ms);
  auto req = BuildRequest(url, target, headers);
  bhttp::response<bhttp::string_body> res;
  beast::flat_buffer buffer;
  std::string failed_step;
  beast::error_code failure;

  // Async operations on a beast::tcp_stream honour expires_after; the synchronous ones
  // would not, and a hub that accepts but never answers would hang the CLI.
  auto fail = [&](const char* step, beast::error_code e) {
    failed_step = step;
    failure = e;
  };
  if (!url.https) {
    beast::tcp_stream stream(ioc);
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
      if (e) return fail("connect", e);
      bhttp::async_write(stream, req, [&](beast::error_code e2, size_t) {
        if (e2) return fail("send", e2);
        bhttp::async_read(stream, buffer, res, [&](beast::error_code e3, size_t) {
          if (e3) return fail("read answer", e3);
        });
      });
    });
    ioc.run();
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  } else {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                    asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (options.insecure) {
      ctx.set_verify_mode(asio::ssl::verify_none);
    } else {
      if (!options.ca_file.empty()) {
        ctx.load_verify_file(options.ca_file, ec);
        if (ec) {
          return Status(ErrorCode::kIoError,
                        "cannot load CA file " + options.ca_file + ": " + ec.message());
        }
      } else {
        ctx.set_default_verify_paths(ec);
      }
      ctx.set_verify_mode(asio::ssl::verify_peer);
      ctx.set_verify_callback(asio::ssl::host_name_verification(url.host));
    }
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
      return Status(ErrorCode::kIoError, "cannot set TLS server name");
    }
    beast::get_lowest_layer(stream).expires_after(timeout);
    beast::get_lowest_layer(stream).async_connect(
        endpoints, [&](beast::error_code e, const tcp::endpoint&) {
          if (e) return fail("connect", e);
          stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e1) {
            if (e1) return fail("TLS handshake", e1);
            bhttp::async_write(stream, req, [&](beast::error_code e2, size_t) {
              if (e2) return fail("send", e2);
              bhttp::async_read(stream, buffer, res, [&](beast::error_code e3, size_t) {
                if (e3) return fail("read answer", e3);
              });
            });
          });
        });
    ioc.run();
  }
  if (failure) return Unavailable(url, failed_step, failure);
  return HttpAnswer{static_cast<int>(res.result_int()), std::move(res.body())};
}

}  // namespace machub::app
