// The local terminal during `stack exec` with a tty: raw mode (every key, Ctrl-C included, is a
// byte for the container's terminal), restored on every way out: return, exception, and the
// signals that end the process. Private to src/cli.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace stack::cli {

class RawTerminal {
 public:
  // Puts terminal FD in raw mode; nullopt when FD is not a terminal (or cannot be set).
  static std::optional<RawTerminal> enter(int fd);
  RawTerminal(RawTerminal&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  RawTerminal& operator=(RawTerminal&&) = delete;
  RawTerminal(const RawTerminal&) = delete;
  ~RawTerminal();

 private:
  explicit RawTerminal(int fd) : fd_(fd) {}
  int fd_;
};

// The size of terminal FD (columns, rows), nullopt when it has none.
std::optional<std::pair<uint16_t, uint16_t>> terminal_size(int fd);

// A descriptor that becomes readable at each SIGWINCH (the read end of a non-blocking pipe the
// handler writes to; the handler is installed on the first call), -1 when it cannot be made.
// The reader drains it, then asks terminal_size again.
int window_changes();

// A descriptor from which each signal `attach --sig-proxy` passes on (SIGINT, SIGTERM, SIGHUP,
// SIGQUIT, SIGUSR1, SIGUSR2) that this process receives from now on reads as one byte, its
// number (a non-blocking pipe the handler writes to; installed on the first call); -1 when it
// cannot be made.
int proxied_signals();

// Writes all of DATA to FD, waiting on a non-blocking one; false on an error.
bool write_all(int fd, std::string_view data);

}  // namespace stack::cli
