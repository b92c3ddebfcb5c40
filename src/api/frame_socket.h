// The blocking side of an upgraded connection that a route serves on a thread of its own (cp,
// image transfers): the thread itself, whole writes, and the client's stdin frames read as one
// byte stream. Frames as exec_stream.h. Private to src/api.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "api/exec_stream.h"
#include "common/result.h"

namespace stack::api {

// Serves the upgraded connection FD on a thread of its own and resumes when it has ended: FD
// made blocking with 60 s timeouts (a client that neither sends nor reads for that long is
// dropped), the 101 answer naming PROTOCOL sent, then SERVE(FD, AFTER) (AFTER: what the HTTP
// reader read past the request), and FD closed. Every parameter is taken by value: a
// coroutine's reference would dangle once it first waits, while the thread still runs.
boost::asio::awaitable<void> serve_upgraded(int fd, std::string after, std::string protocol,
                                            std::function<void(int, std::string)> serve);

// Sends all of DATA on blocking socket FD; false once the client is gone.
bool send_all(int fd, std::string_view data);

// The client's stdin frames as one byte stream, ending at its stdin-eof frame.
class FrameSource {
 public:
  FrameSource(int sock, std::string after) : sock_(sock) { frames_.feed(after); }
  // Up to N bytes; 0 at stdin-eof. An error for a client that closes before it, or sends a
  // frame of another kind.
  Result<size_t> read(char* buf, size_t n);
  // Reads and drops the rest of the client's stream (so that it reads our answer).
  void drain();

 private:
  int sock_;
  exec::FrameReader frames_;
  std::string pending_;
  size_t offset_ = 0;
  bool eof_ = false;
};

}  // namespace stack::api
