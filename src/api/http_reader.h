// Reading one HTTP/1.1 response, as a pure function of the bytes the daemon sent: the status
// line, the headers, then a body delimited by Content-Length, by chunked encoding, or by the
// end of the connection (the API's streams). No socket: the client feeds it, unit tests call it
// directly. Client side of src/api; no Boost.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stack::api {

class ResponseReader {
 public:
  // A header larger than this is not the daemon's.
  static constexpr size_t kMaxHeaderBytes = 64 * 1024;

  enum class State { header, body, done, failed };

  // Takes the next bytes of the connection. Decoded body bytes accumulate in body(), where the
  // caller may consume them as they come (a stream's lines). After a 101 the header is the
  // whole response: the bytes that follow it are the new protocol's, kept in rest().
  State feed(std::string_view data);
  // The connection ended: done when the body is close-delimited (or complete), else failed.
  State finish();

  [[nodiscard]] State state() const { return state_; }
  [[nodiscard]] int status() const { return status_; }
  // The value of header NAME (case-insensitive), empty when absent.
  [[nodiscard]] std::string header(std::string_view name) const;
  std::string& body() { return body_; }
  [[nodiscard]] std::string& rest() { return pending_; }
  // Why the response could not be read (state failed).
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  enum class Framing { length, chunked, close, none };
  enum class Chunk { size, data, data_end, trailer };

  State fail(std::string why);
  State parse_header();
  State parse_body();

  State state_ = State::header;
  std::string pending_;  // bytes not consumed yet
  std::string body_;
  std::string error_;
  int status_ = 0;
  std::vector<std::pair<std::string, std::string>> headers_;
  Framing framing_ = Framing::close;
  size_t remaining_ = 0;  // of the Content-Length, or of the current chunk
  Chunk chunk_ = Chunk::size;
};

}  // namespace stack::api
