// Reading a container's log files as the init writes them (CRI format, rotated by size):
// the last N records, and following new ones as they are written. Read-only on the host.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace stack::engine {

struct LogRecord {
  std::string time;    // RFC 3339 with nanoseconds, UTC
  std::string stream;  // "stdout" | "stderr"
  std::string text;    // one whole line (partial records joined)
  bool partial = false;  // a LogFollower with partials: the line goes on in the next record
};

// Parses one record line; false when it is not one.
bool parse_log_line(std::string_view line, LogRecord& out);

// The records of every log file of the container in DIR, oldest first; only the last TAIL
// when TAIL >= 0.
[[nodiscard]] Result<std::vector<LogRecord>> read_logs(const std::filesystem::path& dir,
                                                       int64_t tail = -1);

// Follows container.log in DIR from its current end (or start), across rotations. With
// PARTIALS, partial records come out as they are (a terminal's prompt, `stack attach`).
class LogFollower {
 public:
  [[nodiscard]] static Result<LogFollower> open(const std::filesystem::path& dir, bool from_start,
                                                bool partials = false);
  // Records written since the last call, waiting up to TIMEOUT for the first one.
  [[nodiscard]] Result<std::vector<LogRecord>> next(std::chrono::milliseconds timeout);
  // Records written since the last call, without waiting.
  [[nodiscard]] Result<std::vector<LogRecord>> read_new();
  // Readable when there may be new records (an inotify descriptor), for event loops.
  [[nodiscard]] int fd() const { return inotify_.get(); }

 private:
  LogFollower() = default;
  Result<void> reopen();
  void read_available(std::vector<LogRecord>& out);
  std::filesystem::path dir_;
  UniqueFd inotify_, file_;
  std::string partial_line_, partial_record_;
  bool partials_ = false;
};

}  // namespace stack::engine
