// Reading and following the CRI-format log files that the container init writes.
#include "engine/logs.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <deque>

#include "common/files.h"

namespace stack::engine {

bool parse_log_line(std::string_view line, LogRecord& out) {
  auto a = line.find(' ');
  if (a == std::string_view::npos) return false;
  auto b = line.find(' ', a + 1);
  if (b == std::string_view::npos || b + 2 > line.size()) return false;
  out.time = std::string(line.substr(0, a));
  out.stream = std::string(line.substr(a + 1, b - a - 1));
  char tag = line[b + 1];
  out.text = b + 3 <= line.size() ? std::string(line.substr(b + 3)) : std::string();
  return tag == 'F' || tag == 'P';
}

namespace {

// Appends the records of CONTENT to OUT, joining partial ("P") records with what follows.
void parse_records(std::string_view content, std::string& partial, std::vector<LogRecord>& out,
                   bool keep_partials = false) {
  while (!content.empty()) {
    auto nl = content.find('\n');
    if (nl == std::string_view::npos) break;
    std::string_view line = content.substr(0, nl);
    content.remove_prefix(nl + 1);
    LogRecord r;
    if (!parse_log_line(line, r)) continue;
    auto b = line.find(' ', line.find(' ') + 1);
    if (line[b + 1] == 'P' && keep_partials) {
      r.partial = true;
      out.push_back(std::move(r));
      continue;
    }
    if (line[b + 1] == 'P') {
      partial += r.text;
      continue;
    }
    if (!partial.empty()) r.text = std::exchange(partial, {}) + r.text;
    out.push_back(std::move(r));
  }
}

}  // namespace

Result<std::vector<LogRecord>> read_logs(const std::filesystem::path& dir, int64_t tail) {
  // container.log.N is older than container.log.N-1; container.log is the newest.
  std::vector<std::filesystem::path> files;
  for (int i = 64; i >= 1; i--) {
    auto p = dir / ("container.log." + std::to_string(i));
    if (::access(p.c_str(), F_OK) == 0) files.push_back(p);
  }
  files.push_back(dir / "container.log");
  std::vector<LogRecord> out;
  std::string partial;
  for (const auto& f : files) {
    auto content = read_file(f);
    if (!content) continue;  // rotated away meanwhile, or no output yet
    parse_records(*content, partial, out);
  }
  if (tail >= 0 && static_cast<size_t>(tail) < out.size())
    out.erase(out.begin(), out.end() - tail);
  return out;
}

Result<LogFollower> LogFollower::open(const std::filesystem::path& dir, bool from_start,
                                      bool partials) {
  LogFollower f;
  f.dir_ = dir;
  f.partials_ = partials;
  f.inotify_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!f.inotify_) return fail_errno("inotify_init");
  if (::inotify_add_watch(f.inotify_.get(), dir.c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0)
    return fail_errno("watch " + dir.string());
  if (auto r = f.reopen(); !r) return fail(r.error());
  if (!from_start && f.file_) ::lseek(f.file_.get(), 0, SEEK_END);
  return f;
}

Result<void> LogFollower::reopen() {
  file_.reset(::open((dir_ / "container.log").c_str(), O_RDONLY | O_CLOEXEC));
  return {};
}

void LogFollower::read_available(std::vector<LogRecord>& out) {
  if (!file_) return;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(file_.get(), buf, sizeof buf);
    if (n <= 0) break;
    partial_line_.append(buf, static_cast<size_t>(n));
  }
  auto last_nl = partial_line_.rfind('\n');
  if (last_nl == std::string::npos) return;
  parse_records(std::string_view(partial_line_).substr(0, last_nl + 1), partial_record_, out,
                partials_);
  partial_line_.erase(0, last_nl + 1);
}

Result<std::vector<LogRecord>> LogFollower::read_new() {
  std::vector<LogRecord> out;
  alignas(inotify_event) char buf[4096];
  bool rotated = false;
  for (;;) {
    ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && ev->len &&
          std::string_view(ev->name) == "container.log")
        rotated = true;
      p += sizeof(inotify_event) + ev->len;
    }
  }
  read_available(out);  // the rest of the file we had open (renamed, still ours)
  if (rotated || !file_) {
    if (auto r = reopen(); !r) return fail(r.error());
    read_available(out);
  }
  return out;
}

Result<std::vector<LogRecord>> LogFollower::next(std::chrono::milliseconds timeout) {
  auto out = read_new();
  if (!out || !out->empty()) return out;
  pollfd pfd{inotify_.get(), POLLIN, 0};
  int r = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (r < 0 && errno != EINTR) return fail_errno("poll inotify");
  if (r <= 0) return out;
  return read_new();
}

}  // namespace stack::engine
