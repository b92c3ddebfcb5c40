// User namespaces for containers (userns_mode / --userns-remap): the subordinate ranges of a
// host user, a namespace made with those maps, and the host files the container's mapped root
// must own. Root on the host; nothing here runs in the container.
#include "engine/userns.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <string>

#include "common/files.h"

namespace stack::engine {

namespace {

// The first range of USER ("name" or a uid in decimal) in a subid file ("user:start:count").
Result<std::pair<uint32_t, uint32_t>> find_range(const std::filesystem::path& file,
                                                 const std::string& user, uint32_t need) {
  auto text = read_file(file);
  if (!text) return fail(text.error());
  std::string_view rest = *text;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (c1 == std::string_view::npos || c2 == std::string_view::npos || line.substr(0, c1) != user)
      continue;
    uint32_t start = 0, count = 0;
    auto s = line.substr(c1 + 1, c2 - c1 - 1), n = line.substr(c2 + 1);
    if (std::from_chars(s.data(), s.data() + s.size(), start).ec != std::errc() ||
        std::from_chars(n.data(), n.data() + n.size(), count).ec != std::errc() || count < need)
      continue;
    return std::pair{start, count};
  }
  return fail(file.string() + " has no range of " + std::to_string(need) + " ids for " + user);
}

int hold(void* arg) {
  // In the new namespace until the engine has written its maps and opened it.
  auto* fds = static_cast<int*>(arg);
  ::close(fds[1]);
  char c;
  while (::read(fds[0], &c, 1) > 0) {
  }
  ::_exit(0);
}

// LINES (uid_map(5)'s, several ranges) or else the one range at BASE, in one write(2) as the
// kernel wants it.
Result<void> write_map(pid_t pid, const char* which, const std::string& lines, uint32_t base,
                       uint32_t count) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + which;
  std::string line =
      lines.empty() ? "0 " + std::to_string(base) + " " + std::to_string(count) + "\n" : lines;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    return fail_errno("write " + path);
  return {};
}

}  // namespace

Result<IdMapping> subordinate_ids(const std::string& user, const std::filesystem::path& subuid,
                                  const std::filesystem::path& subgid) {
  constexpr uint32_t kNeed = 65536;  // container ids 0..65535: every id an image uses
  auto u = find_range(subuid, user, kNeed);
  if (!u) return fail(u.error().wrap("user namespace for " + user));
  auto g = find_range(subgid, user, kNeed);
  if (!g) return fail(g.error().wrap("user namespace for " + user));
  return IdMapping{u->first, g->first, kNeed};
}

Result<UniqueFd> make_userns(const IdMapping& map) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd rd(fds[0]), wr(fds[1]);
  constexpr size_t kStack = 16 * 1024;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return fail_errno("mmap");
  // CLONE_VM: no page tables copied from a large daemon; the child only reads a pipe on its
  // own stack (no CLONE_VFORK: we must run meanwhile to write its maps).
  pid_t pid =
      ::clone(hold, static_cast<char*>(stack) + kStack, CLONE_NEWUSER | CLONE_VM | SIGCHLD, fds);
  if (pid < 0) {
    int err = errno;
    ::munmap(stack, kStack);
    return fail_errno("clone a user namespace", err);
  }
  // uid_map and gid_map written by root in the parent namespace: setgroups stays allowed.
  Result<void> maps = write_map(pid, "uid_map", map.uid_map, map.uid_base, map.count);
  if (maps) maps = write_map(pid, "gid_map", map.gid_map, map.gid_base, map.count);
  UniqueFd ns(::open(("/proc/" + std::to_string(pid) + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
  int err = errno;
  wr.reset();  // the child reads EOF and exits
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  ::munmap(stack, kStack);  // only now: the child ran on it
  if (!maps) return fail(maps.error().wrap("user namespace"));
  if (!ns) return fail_errno("open the user namespace", err);
  return ns;
}

Result<void> own_for(const std::filesystem::path& dir, const IdMapping& map) {
  for (const char* name : {"", "rootfs", "upper", "work", "hosts", "hostname", "resolv.conf",
                           "container.log", "container.log.1", "container.log.2"}) {
    auto p = name[0] ? dir / name : dir;
    if (::lchown(p.c_str(), map.uid_base, map.gid_base) != 0 && errno != ENOENT)
      return fail_errno("chown " + p.string());
  }
  return {};
}

bool in_other_userns(pid_t pid) {
  struct stat self {
  }, other{};
  return ::stat("/proc/self/ns/user", &self) == 0 &&
         ::stat(("/proc/" + std::to_string(pid) + "/ns/user").c_str(), &other) == 0 &&
         self.st_ino != other.st_ino;
}

}  // namespace stack::engine
