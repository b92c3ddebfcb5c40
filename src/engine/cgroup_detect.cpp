// Picks the cgroup driver for the host, and implements the file helpers both drivers share
// (cgroup_fs.h). Reads the cgroupfs root given to it; never mounts anything.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <thread>

#include "common/files.h"
#include "common/unique_fd.h"
#include "engine/cgroup.h"
#include "engine/cgroup_fs.h"

namespace stack::engine {

namespace fs = std::filesystem;

Result<std::unique_ptr<CgroupDriver>> detect_cgroup_driver(const fs::path& root) {
  struct statfs st {};
  if (::statfs(root.c_str(), &st) != 0) return fail_errno("cgroup: statfs " + root.string());
  if (st.f_type == CGROUP2_SUPER_MAGIC) return make_cgroup_v2(root);
  if (cgroupfs::is_dir(root / "memory")) return make_cgroup_v1(root);
  return fail("cgroup: " + root.string() +
              " is neither a cgroup2 mount nor a cgroup v1 tree with a memory hierarchy");
}

namespace cgroupfs {

Result<void> check_relative(const std::string& path) {
  fs::path p(path);
  if (path.empty() || p.is_absolute())
    return fail("invalid cgroup path \"" + path + "\": must be relative and non-empty");
  for (const auto& part : p)
    if (part == ".." || part == ".")
      return fail("invalid cgroup path \"" + path + "\": must not contain . or ..");
  return {};
}

Result<void> write_value(const fs::path& file, std::string_view value) {
  const std::string ctx = "write " + file.string();
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return fail_errno(ctx);
  // The kernel takes a control file's value from a single write; a short write is an error.
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno(ctx);
  if (static_cast<size_t>(n) != value.size()) return fail(ctx + ": short write");
  return {};
}

Result<std::string> read_value(const fs::path& file) { return stack::read_file(file); }

static Result<uint64_t> parse_u64(std::string_view s, const fs::path& file) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size())
    return fail("parse " + file.string() + ": not a number: \"" + std::string(s) + "\"");
  return v;
}

Result<uint64_t> read_u64(const fs::path& file) {
  auto content = read_value(file);
  if (!content) return fail(content.error());
  return parse_u64(*content, file);
}

Result<uint64_t> read_key(const fs::path& file, std::string_view key) {
  auto content = read_value(file);
  if (!content) return fail(content.error());
  std::string_view rest(*content);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos || line.substr(0, sp) != key) continue;
    return parse_u64(line.substr(sp + 1), file);
  }
  return fail("read " + file.string() + ": no \"" + std::string(key) + "\" line");
}

Result<std::vector<pid_t>> read_pids(const fs::path& file) {
  auto content = read_value(file);
  if (!content) return fail(content.error());
  std::vector<pid_t> out;
  std::string_view rest(*content);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.empty()) continue;
    auto v = parse_u64(line, file);
    if (!v) return fail(v.error());
    out.push_back(static_cast<pid_t>(*v));
  }
  return out;
}

Result<bool> make_dirs(const fs::path& base, const std::string& rel) {
  // ENOENT: a parent made or found a moment ago is gone - a sibling's remove_dirs pruned it
  // while it was empty (two containers of one project starting at once). Start over.
  for (int attempt = 0;; ++attempt) {
    fs::path dir = base;
    bool created = false;
    int err = 0;
    for (const auto& part : fs::path(rel)) {
      dir /= part;
      if (::mkdir(dir.c_str(), 0755) == 0) {
        created = true;
      } else if (errno == EEXIST) {
        created = false;
      } else {
        err = errno;
        break;
      }
    }
    if (err == 0) return created;
    if (err != ENOENT || dir.parent_path() == base || attempt >= 100)
      return fail_errno("mkdir " + dir.string(), err);
  }
}

// rmdir, retrying EBUSY: after SIGKILL a task stays in cgroup.procs until it has exited.
static Result<void> rmdir_retry(const fs::path& dir) {
  for (int attempt = 0;; ++attempt) {
    // ENAMETOOLONG: a path the kernel refuses was never made either.
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT || errno == ENAMETOOLONG) return {};
    // The unified (v2) tree answers ENOTEMPTY while a just-exited task is still leaving.
    if ((errno != EBUSY && errno != ENOTEMPTY) || attempt >= 20)
      return fail_errno("rmdir " + dir.string());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<void> remove_dirs(const fs::path& base, const std::string& rel) {
  fs::path leaf(rel);
  if (auto r = rmdir_retry(base / leaf); !r) return r;
  // stack's own tree, and stack-runtime's default one ("stack-runtime/<id>", src/runtime).
  if (leaf.begin() == leaf.end() || (*leaf.begin() != "stack" && *leaf.begin() != "stack-runtime"))
    return {};
  // Parents up to and including the first component (the "stack" directory), stopping at the
  // first one still in use by a sibling: nothing of stack's stays on the host.
  for (fs::path p = leaf.parent_path(); !p.empty(); p = p.parent_path()) {
    fs::path dir = base / p;
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) continue;
    if (errno == ENOTEMPTY || errno == EBUSY || errno == EEXIST) break;
    return fail_errno("rmdir " + dir.string());
  }
  return {};
}

bool is_dir(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const fs::path& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace cgroupfs

}  // namespace stack::engine
