// Resolving a compose `user:` to numeric ids from the image's own /etc/passwd and /etc/group,
// read from the layers on the host (topmost first), never from the host's user database, and
// never through a layer's symlink out of the layer (etc/passwd -> /etc/shadow would otherwise
// read the host's shadow file as root).
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "engine/container.h"

namespace stack::engine {

namespace {

std::optional<uint32_t> as_number(std::string_view s) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    auto pos = s.find(sep);
    out.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return out;
    s.remove_prefix(pos + 1);
  }
}

// REL inside LAYER, its symlinks resolved with the layer as the root (openat2(2)
// RESOLVE_IN_ROOT): what the image itself holds, or nothing. Capped at 4 MiB.
std::optional<std::string> layer_file(const std::filesystem::path& layer, const char* rel) {
  UniqueFd root(::open(layer.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return std::nullopt;
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, root.get(), rel, &how, sizeof how)));
  if (!fd) return std::nullopt;
  std::string out;
  char buf[8192];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || out.size() > (4u << 20)) return std::nullopt;  // a directory, a fifo, a bomb
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The file as the container will see it: the topmost layer that has it wins.
std::string image_file(const std::vector<std::filesystem::path>& layers, const char* rel) {
  for (auto it = layers.rbegin(); it != layers.rend(); ++it)
    if (auto content = layer_file(*it, rel)) return *content;
  return {};
}

// Calls F with the fields of each line of a colon-separated database file.
template <class F>
void each_entry(const std::string& db, F f) {
  for (auto line : split(db, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    f(split(line, ':'));
  }
}

}  // namespace

Result<void> resolve_user(std::string_view user, const std::vector<std::filesystem::path>& layers,
                          ProcessSpec& process) {
  process.uid = 0;
  process.gid = 0;
  process.groups.clear();
  if (user.empty()) return {};
  auto colon = user.find(':');
  std::string_view name = user.substr(0, colon);
  std::string_view group = colon == std::string_view::npos ? "" : user.substr(colon + 1);

  std::string passwd = image_file(layers, "etc/passwd");
  std::string login;
  bool found = false;
  each_entry(passwd, [&](const std::vector<std::string_view>& f) {
    if (found || f.size() < 4) return;
    auto uid = as_number(f[2]);
    if (f[0] == name || (uid && as_number(name) == uid)) {
      login = std::string(f[0]);
      process.uid = uid.value_or(0);
      process.gid = as_number(f[3]).value_or(0);
      found = true;
    }
  });
  if (!found) {
    auto uid = as_number(name);
    if (!uid)
      return fail("user \"" + std::string(name) + "\" not found in the image's /etc/passwd");
    process.uid = *uid;
    process.gid = 0;  // Docker's choice for a uid the image does not know
  }

  std::string groups = image_file(layers, "etc/group");
  if (!group.empty()) {
    bool gfound = false;
    each_entry(groups, [&](const std::vector<std::string_view>& f) {
      if (gfound || f.size() < 3) return;
      auto gid = as_number(f[2]);
      if (f[0] == group || (gid && as_number(group) == gid)) {
        process.gid = gid.value_or(0);
        gfound = true;
      }
    });
    if (!gfound) {
      auto gid = as_number(group);
      if (!gid)
        return fail("group \"" + std::string(group) + "\" not found in the image's /etc/group");
      process.gid = *gid;
    }
  }
  // Supplementary groups the user is listed in, as initgroups(3) would find them.
  if (!login.empty()) {
    each_entry(groups, [&](const std::vector<std::string_view>& f) {
      if (f.size() < 4) return;
      for (auto member : split(f[3], ','))
        if (member == login)
          if (auto gid = as_number(f[2]); gid && *gid != process.gid)
            process.groups.push_back(*gid);
    });
  }
  return {};
}

Result<gid_t> resolve_group(std::string_view group,
                            const std::vector<std::filesystem::path>& layers) {
  if (auto n = as_number(group)) return static_cast<gid_t>(*n);
  std::optional<gid_t> found;
  each_entry(image_file(layers, "etc/group"), [&](const std::vector<std::string_view>& f) {
    if (!found && f.size() >= 3 && f[0] == group)
      if (auto gid = as_number(f[2])) found = static_cast<gid_t>(*gid);
  });
  if (!found) return fail("group \"" + std::string(group) + "\" not found in the image's /etc/group");
  return *found;
}

}  // namespace stack::engine
