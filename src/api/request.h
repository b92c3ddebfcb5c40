// Reading and decoding one API request, as pure functions of the bytes a client sent: the HTTP
// parser with the API's limits, the target's path and query, and which methods a path has.
// No socket, no daemon: the server feeds it, the fuzz target and unit tests call it directly.
// Private to src/api.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stack::api {

// The API's bounds (README, "The API"). A request is one line of JSON options and paths: a
// megabyte is far beyond any, and the CLI's environment, which `up` carries, fits in it.
inline constexpr size_t kMaxHeaderBytes = 16 * 1024;  // request line and headers: else 431
inline constexpr size_t kMaxBodyBytes = 1 << 20;      // else 413
// The whole request must arrive within this (a client sending a byte a second is cut off).
inline constexpr std::chrono::seconds kRequestTimeout{5};

struct Request {
  std::string method;
  std::string target;  // path and query
  std::string body;
  std::string upgrade;  // the Upgrade header when Connection asks for one (exec), else empty
  std::string after;    // bytes the client sent after the request (an upgraded stream's first)
};

// An HTTP status and the message of its JSON error body.
struct HttpError {
  int status = 400;
  std::string message;
};

// Reads one HTTP/1.1 request from bytes as they arrive, through Boost.Beast's parser with the
// limits above. One request per connection: bytes after a complete request are not read as
// another, but kept (Request::after) for a connection the request upgrades.
class RequestReader {
 public:
  RequestReader();
  ~RequestReader();
  RequestReader(const RequestReader&) = delete;
  RequestReader& operator=(const RequestReader&) = delete;

  enum class State { need_more, done, failed };
  State feed(std::string_view data);
  // The client closed its end: done if the request was complete, else failed.
  State finish();
  [[nodiscard]] State state() const { return state_; }
  // Valid once done.
  [[nodiscard]] Request take();
  // Valid once failed.
  [[nodiscard]] const HttpError& error() const { return error_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  State state_ = State::need_more;
  HttpError error_;
};

// A request target: path segments and query parameters, percent-decoded.
struct Target {
  std::vector<std::string> path;
  std::multimap<std::string, std::string> query;

  [[nodiscard]] std::string get(const std::string& key, const std::string& def = "") const;
  [[nodiscard]] bool flag(const std::string& key) const;  // "1" or "true"
  [[nodiscard]] std::vector<std::string> all(const std::string& key) const;
  // The parameter as an integer; DEF when absent, an error when it is not one.
  [[nodiscard]] Result<long long> integer(const std::string& key, long long def) const;
};

// Error for a bad percent-escape ("%zz") or a NUL in the decoded text.
[[nodiscard]] Result<Target> parse_target(std::string_view target);

// The methods PATH answers to ({"GET"}, ...); empty for a path the API does not have. The
// router answers 404 for an empty list and 405 (with Allow) for a method not in it.
[[nodiscard]] std::vector<std::string_view> allowed_methods(const std::vector<std::string>& path);
// "GET, POST": the Allow header of a 405.
[[nodiscard]] std::string allow_header(const std::vector<std::string_view>& methods);

}  // namespace stack::api
