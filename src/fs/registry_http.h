// One HTTP request through libcurl, for the registry client: GET, HEAD, POST, PUT or PATCH;
// headers and a body (a string or a file) in, status, headers and body out (or the body streamed
// to a callback), redirects followed (GET and HEAD), TLS verified unless told not to. Private to
// src/fs; the only file that includes curl.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::fs {

// The Error::sys_errno of a failure worth retrying: the connection was refused, reset or cut,
// it timed out, or the server answered 5xx / 429.
inline constexpr int kTransient = EAGAIN;

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Accept: ...", "Authorization: ..."
  bool verify_tls = true;
  int64_t resume_from = 0;  // > 0: "Range: bytes=N-"
  // Called with each piece of the body of a 2xx answer; false aborts the transfer. Unset: the
  // body is collected into HttpResponse::body (at most 4 MiB).
  std::function<bool(const char* data, size_t n)> on_body;
  std::function<bool()> cancelled;  // checked about once a second, and with every piece of body
  // Gives up on a connection that moves fewer than 1 byte/s for this long.
  long stall_seconds = 30;
  // For the TCP connection and the TLS handshake.
  long connect_seconds = 30;
  std::string method = "GET";  // HEAD, POST, PUT, PATCH too
  // What a POST, PUT or PATCH sends: BODY_FILE's bytes when it is set (opened afresh for each
  // request, so a retry sends them whole again), else BODY.
  std::string body;
  std::filesystem::path body_file;
  std::function<void(uint64_t sent)> on_sent;  // bytes of the body sent so far
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; the last value of each
  std::string body;
  std::string url;  // after redirects
};

// A transport failure is an error (kTransient when retrying may help); any HTTP status is a
// response, even 4xx and 5xx.
[[nodiscard]] Result<HttpResponse> http_request(const HttpRequest& request);
[[nodiscard]] inline Result<HttpResponse> http_get(const HttpRequest& request) {
  return http_request(request);
}

}  // namespace stack::fs
