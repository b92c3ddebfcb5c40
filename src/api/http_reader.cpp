// See http_reader.h. RFC 9112: a response to our requests has a body unless its status is
// 1xx, 204 or 304; Transfer-Encoding: chunked wins over Content-Length; without either, the
// body runs to the end of the connection.
#include "api/http_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace stack::api {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

ResponseReader::State ResponseReader::fail(std::string why) {
  error_ = "malformed response from the daemon: " + std::move(why);
  return state_ = State::failed;
}

std::string ResponseReader::header(std::string_view name) const {
  for (const auto& [k, v] : headers_)
    if (iequals(k, name)) return v;
  return "";
}

ResponseReader::State ResponseReader::feed(std::string_view data) {
  if (state_ == State::failed) return state_;
  pending_.append(data);
  if (state_ == State::header) parse_header();
  if (state_ == State::body) parse_body();
  return state_;
}

ResponseReader::State ResponseReader::finish() {
  if (state_ == State::body && framing_ == Framing::close) {
    body_.append(pending_);
    pending_.clear();
    return state_ = State::done;
  }
  if (state_ == State::done || state_ == State::failed) return state_;
  return fail(state_ == State::header ? "the connection ended inside the response header"
                                      : "the connection ended inside the response body");
}

ResponseReader::State ResponseReader::parse_header() {
  auto end = pending_.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (pending_.size() > kMaxHeaderBytes) return fail("response header over 64 KiB");
    return state_;
  }
  if (end > kMaxHeaderBytes) return fail("response header over 64 KiB");
  std::string_view head(pending_.data(), end);
  auto line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12 || status_line[8] != ' ')
    return fail("bad status line \"" + std::string(status_line.substr(0, 80)) + "\"");
  auto code = status_line.substr(9, 3);
  auto [p, ec] = std::from_chars(code.data(), code.data() + 3, status_);
  if (ec != std::errc() || p != code.data() + 3 || status_ < 100 || status_ > 599)
    return fail("bad status code \"" + std::string(code) + "\"");
  std::string_view rest = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
  while (!rest.empty()) {
    auto nl = rest.find("\r\n");
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? "" : rest.substr(nl + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return fail("bad header line \"" + std::string(line.substr(0, 80)) + "\"");
    headers_.emplace_back(std::string(line.substr(0, colon)),
                          std::string(trim(line.substr(colon + 1))));
  }
  pending_.erase(0, end + 4);
  if (status_ < 200 || status_ == 204 || status_ == 304) {
    framing_ = Framing::none;
    return state_ = State::done;  // a 101's following bytes stay in rest()
  }
  std::string te = header("Transfer-Encoding"), cl = header("Content-Length");
  if (!te.empty()) {
    if (!iequals(te, "chunked")) return fail("unsupported Transfer-Encoding \"" + te + "\"");
    framing_ = Framing::chunked;
  } else if (!cl.empty()) {
    auto [q, cec] = std::from_chars(cl.data(), cl.data() + cl.size(), remaining_);
    if (cec != std::errc() || q != cl.data() + cl.size())
      return fail("bad Content-Length \"" + cl + "\"");
    framing_ = Framing::length;
  }
  return state_ = State::body;
}

ResponseReader::State ResponseReader::parse_body() {
  switch (framing_) {
    case Framing::none:
      return state_ = State::done;
    case Framing::close:
      body_.append(pending_);
      pending_.clear();
      return state_;
    case Framing::length: {
      size_t n = std::min(remaining_, pending_.size());
      body_.append(pending_, 0, n);
      pending_.erase(0, n);
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::done;
      return state_;
    }
    case Framing::chunked:
      break;
  }
  for (;;) {
    if (chunk_ == Chunk::data) {
      size_t n = std::min(remaining_, pending_.size());
      body_.append(pending_, 0, n);
      pending_.erase(0, n);
      remaining_ -= n;
      if (remaining_ > 0) return state_;
      chunk_ = Chunk::data_end;
      continue;
    }
    auto nl = pending_.find("\r\n");
    if (nl == std::string::npos) {
      if (pending_.size() > kMaxHeaderBytes) return fail("chunk header over 64 KiB");
      return state_;
    }
    std::string line = pending_.substr(0, nl);
    pending_.erase(0, nl + 2);
    if (chunk_ == Chunk::data_end) {
      if (!line.empty()) return fail("chunk data longer than its size");
      chunk_ = Chunk::size;
    } else if (chunk_ == Chunk::size) {
      std::string_view size = trim(std::string_view(line).substr(0, line.find(';')));
      auto [q, ec] = std::from_chars(size.data(), size.data() + size.size(), remaining_, 16);
      if (ec != std::errc() || q != size.data() + size.size() || size.empty())
        return fail("bad chunk size \"" + line.substr(0, 40) + "\"");
      chunk_ = remaining_ == 0 ? Chunk::trailer : Chunk::data;
    } else if (line.empty()) {  // the blank line that ends the trailer
      return state_ = State::done;
    }
  }
}

}  // namespace stack::api
