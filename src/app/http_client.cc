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
#include <string>

#include "cloud/url.h"

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
  auto invalid = [&](std::string_view why) {
    return Status(ErrorCode::kInvalidArgument, std::string(why) + ": " + std::string(text));
  };
  Result<cloud::HttpUrl> parsed = cloud::ParseHttpUrl(text);
  if (!parsed.ok()) return invalid("URL must be http://HOST[:PORT][/PATH] or https://...");
  if (parsed->has_userinfo) return invalid("URL must not carry user info");
  if (parsed->has_query || parsed->has_fragment) return invalid("URL must not have a query");
  Url url;
  url.https = parsed->scheme == "https";
  url.host = parsed->host;
  url.port = !parsed->port.empty() ? parsed->port : url.https ? "443" : "80";
  std::string_view path = parsed->path;
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.path = std::string(path);
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
