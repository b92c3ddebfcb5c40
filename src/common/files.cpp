#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <system_error>

#include "common/unique_fd.h"

namespace stack {

namespace fs = std::filesystem;

Result<std::string> read_file(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path.string());
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + path.string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
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
