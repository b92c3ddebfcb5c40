#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <system_error>

#include "common/unique_fd.h"

namespace stack {

namespace fs = std::filesystem;

Result<std::string> read_file(const fs::path& path) {
  return read_file(path, SIZE_MAX - 1, "");
}

Result<std::string> read_file(const fs::path& path, size_t max_bytes, std::string_view what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path.string());
  auto too_large = [&] {
    return fail(path.string() + " is larger than the limit of " + format_size(max_bytes) +
                (what.empty() ? std::string() : " for " + std::string(what)),
                EFBIG);
  };
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode)) {
    if (static_cast<uint64_t>(st.st_size) > max_bytes) return too_large();
  }
  std::string out;
  if (S_ISREG(st.st_mode)) out.reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + path.string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) return too_large();
  }
  return out;
}

std::string format_size(uint64_t bytes) {
  // The largest unit it reaches; exact when it divides, else one decimal: "16 MiB", "2.0 GiB".
  static const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  int u = 0;
  uint64_t unit = 1024;
  while (u < 3 && bytes >= unit * 1024) {
    unit *= 1024;
    ++u;
  }
  if (bytes % unit == 0) return std::to_string(bytes / unit) + " " + units[u];
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", static_cast<double>(bytes) / static_cast<double>(unit),
                units[u]);
  return buf;
}

static Result<void> write_all(int fd, std::string_view content, const fs::path& path) {
  while (!content.empty()) {
    ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write " + path.string());
    }
    content.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<void> write_file(const fs::path& path, std::string_view content) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return fail_errno("open " + path.string());
  return write_all(fd.get(), content, path);
}

Result<void> write_file_atomic(const fs::path& path, std::string_view content, unsigned mode) {
  fs::path tmp = path;
  tmp += ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return fail_errno("open " + tmp.string());
  if (auto r = write_all(fd.get(), content, tmp); !r) return r;
  if (::fsync(fd.get()) != 0) return fail_errno("fsync " + tmp.string());
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail_errno("rename " + tmp.string());
  return {};
}

Result<void> make_dirs(const fs::path& path, unsigned mode) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return fail("create directory " + path.string() + ": " + ec.message(), ec.value());
  ::chmod(path.c_str(), mode);
  return {};
}

Result<void> remove_tree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  // A path the kernel refuses as too long was never made either.
  if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::filename_too_long)
    return fail("remove " + path.string() + ": " + ec.message(), ec.value());
  return {};
}

}  // namespace stack
