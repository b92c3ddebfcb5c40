// See request.h. Beast's parser is fed from a buffer of the bytes it has not consumed yet:
// it consumes a header only once it is complete (need_more until then), so the buffer holds
// at most kMaxHeaderBytes plus one read; the body is consumed as it arrives (eager).
#include "api/request.h"

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <cstdlib>

namespace stack::api {

namespace http = boost::beast::http;

struct RequestReader::Impl {
  http::request_parser<http::string_body> parser;
  std::string pending;  // bytes not consumed by the parser yet
};

RequestReader::RequestReader() : impl_(std::make_unique<Impl>()) {
  impl_->parser.header_limit(kMaxHeaderBytes);
  impl_->parser.body_limit(kMaxBodyBytes);
  impl_->parser.eager(true);
}

RequestReader::~RequestReader() = default;

namespace {

HttpError error_of(const boost::system::error_code& ec) {
  if (ec == http::error::header_limit)
    return {431, "request headers are larger than the limit of " +
                     std::to_string(kMaxHeaderBytes / 1024) + " KiB"};
  if (ec == http::error::body_limit)
    return {413, "request body is larger than the limit of " + std::to_string(kMaxBodyBytes >> 20) +
                     " MiB"};
  return {400, "malformed HTTP request: " + ec.message()};
}

}  // namespace

RequestReader::State RequestReader::feed(std::string_view data) {
  if (state_ != State::need_more) return state_;
  auto& p = impl_->parser;
  impl_->pending.append(data);
  std::string_view rest = impl_->pending;
  while (!rest.empty() && !p.is_done()) {
    boost::system::error_code ec;
    size_t used = p.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    rest.remove_prefix(used);
    if (ec == http::error::need_more) break;
    if (ec) {
      error_ = error_of(ec);
      return state_ = State::failed;
    }
  }
  impl_->pending.erase(0, impl_->pending.size() - rest.size());
  // A header that never ends: Beast says need_more until it sees the blank line, so the limit
  // is also checked here, on what it has not consumed.
  if (!p.is_header_done() && impl_->pending.size() > kMaxHeaderBytes) {
    error_ = error_of(http::error::header_limit);
    return state_ = State::failed;
  }
  if (p.is_done()) state_ = State::done;
  return state_;
}

RequestReader::State RequestReader::finish() {
  if (state_ != State::need_more) return state_;
  boost::system::error_code ec;
  impl_->parser.put_eof(ec);
  if (ec || !impl_->parser.is_done()) {
    error_ = {400, "the request ended before it was complete"};
    return state_ = State::failed;
  }
  return state_ = State::done;
}

Request RequestReader::take() {
  auto& req = impl_->parser.get();
  std::string upgrade;
  if (impl_->parser.upgrade()) upgrade = std::string(req[http::field::upgrade]);
  return Request{std::string(req.method_string()), std::string(req.target()),
                 std::move(req.body()), std::move(upgrade), std::move(impl_->pending)};
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return fail("bad percent-escape in the request target");
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return fail("bad percent-escape in the request target");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
    }
  }
  // Names and paths go to the state store and the file system, where a NUL would end them.
  if (out.find('\0') != std::string::npos) return fail("NUL byte in the request target");
  return out;
}

}  // namespace

std::string Target::get(const std::string& key, const std::string& def) const {
  auto it = query.find(key);
  return it == query.end() ? def : it->second;
}

bool Target::flag(const std::string& key) const {
  auto v = get(key);
  return v == "1" || v == "true";
}

std::vector<std::string> Target::all(const std::string& key) const {
  std::vector<std::string> out;
  for (auto [a, b] = query.equal_range(key); a != b; ++a) out.push_back(a->second);
  return out;
}

Result<long long> Target::integer(const std::string& key, long long def) const {
  auto it = query.find(key);
  if (it == query.end()) return def;
  const std::string& v = it->second;
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE)
    return fail("query parameter " + key + " is not an integer: \"" + v + "\"");
  return n;
}

Result<Target> parse_target(std::string_view t) {
  Target out;
  auto q = t.find('?');
  std::string_view path = t.substr(0, q);
  while (!path.empty()) {
    auto slash = path.find('/');
    if (slash != 0) {
      auto part = percent_decode(path.substr(0, slash), false);
      if (!part) return fail(part.error());
      out.path.push_back(std::move(*part));
    }
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (q == std::string_view::npos) return out;
  std::string_view query = t.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto kv = query.substr(0, amp);
    auto eq = kv.find('=');
    auto key = percent_decode(kv.substr(0, eq), true);
    if (!key) return fail(key.error());
    auto value = eq == std::string_view::npos ? Result<std::string>("1")
                                              : percent_decode(kv.substr(eq + 1), true);
    if (!value) return fail(value.error());
    out.query.emplace(std::move(*key), std::move(*value));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::vector<std::string_view> allowed_methods(const std::vector<std::string>& p) {
  if (p.empty() || p[0] != "v1") return {};
  if (p.size() == 2) {
    const std::string& what = p[1];
    if (what == "version" || what == "projects" || what == "containers" || what == "events" ||
        what == "images" || what == "nodes")
      return {"GET"};
    if (what == "up" || what == "build" || what == "shutdown" || what == "auth" ||
        what == "run")
      return {"POST"};
    if (what == "volumes" || what == "networks") return {"GET", "POST"};
    return {};
  }
  if (p.size() == 3 && p[1] == "networks") return {"GET", "DELETE"};
  if (p.size() == 3 && p[1] == "nodes") return {"GET"};  // api/node_routes.cpp
  if (p.size() == 4 && p[1] == "nodes" && p[3] == "update") return {"POST"};
  if (p.size() == 4 && p[1] == "nodes" && p[3] == "ps") return {"GET"};
  if (p.size() == 3 && p[1] == "volumes") {
    if (p[2] == "prune") return {"GET", "POST", "DELETE"};  // GET, DELETE: a volume named "prune"
    return {"GET", "DELETE"};
  }
  if (p.size() == 3 && p[1] == "images") {
    // DELETE on each: an image may be named "import" (api/image_routes.cpp).
    const std::string& what = p[2];
    if (what == "import" || what == "pull" || what == "push" || what == "load" ||
        what == "save" || what == "tag" || what == "prune")
      return {"POST", "DELETE"};
    if (what == "inspect") return {"GET", "DELETE"};
    return {"DELETE"};
  }
  if (p.size() == 4 && p[1] == "projects") {
    const std::string& what = p[3];
    if (what == "containers" || what == "logs" || what == "port" || what == "top" ||
        what == "wait")
      return {"GET"};
    if (what == "stats") return {"GET"};  // api/stats_routes.cpp
    if (what == "attach") return {"GET", "POST"};  // api/attach_routes.cpp
    if (what == "down" || what == "stop" || what == "start" || what == "restart" ||
        what == "rollback" || what == "exec" || what == "kill" ||
        what == "pause" || what == "unpause" || what == "scale" || what == "rm" ||
        what == "cp")
      return {"POST"};
  }
  return {};
}

std::string allow_header(const std::vector<std::string_view>& methods) {
  std::string out;
  for (auto m : methods) out += (out.empty() ? "" : ", ") + std::string(m);
  return out;
}

}  // namespace stack::api
