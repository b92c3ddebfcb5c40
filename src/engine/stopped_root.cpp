// open_stopped_root: a read-only overlay whose topmost lower directory is the container's upper
// one (without an upperdir overlayfs needs no workdir and writes nothing; the upper's whiteouts
// and opaque directories hide what they hid in the running container), made with the new mount
// API (fsopen, fsconfig, fsmount: mount(2)'s successors, Linux 5.2) as a detached mount that is
// attached nowhere: no mount namespace sees it, and it goes away with the last descriptor.
#include "engine/stopped_root.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>

#include "engine/init_message.h"

namespace stack::engine {

Result<UniqueFd> open_stopped_root(const model::ContainerSpec& spec) {
  if (spec.userns)
    return fail("its service has a user namespace (its layers are shifted copies): start it "
                "to copy");
  auto open_dir = [](const std::filesystem::path& dir) -> Result<UniqueFd> {
    UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + dir.string());
    return fd;
  };
  if (spec.root_in_place) return open_dir(spec.layers.front());  // an OCI bundle's root
  auto lowers = lower_dirs(spec.layers);
  if (!lowers) return fail(lowers.error());
  std::string options = *lowers;
  // A container never started may have no upper directory yet: the image's layers alone.
  std::error_code ec;
  auto upper = spec.dir / "upper";
  if (std::filesystem::is_directory(upper, ec)) {
    if (upper.string().find_first_of(":,") != std::string::npos)
      return fail("container directory " + upper.string() + " contains ':' or ','");
    options = upper.string() + ":" + options;
  } else if (spec.layers.size() == 1) {
    // overlayfs wants two lower directories without an upper one; the layer is the root.
    return open_dir(spec.layers.front());
  }
  UniqueFd fs(static_cast<int>(::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
  if (!fs) return fail_errno("fsopen(overlay)");
  if (::syscall(SYS_fsconfig, fs.get(), FSCONFIG_SET_STRING, "lowerdir", options.c_str(), 0) != 0)
    return fail_errno("overlay lowerdir=" + options);
  if (::syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    return fail_errno("mount the container's layers read-only");
  UniqueFd root(static_cast<int>(::syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC,
                                           MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                               MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)));
  if (!root) return fail_errno("fsmount the container's layers");
  return root;
}

std::optional<std::string> mount_holding(const model::ContainerSpec& spec,
                                         const std::string& path) {
  auto under = [&](const std::string& target) {
    if (target == "/") return true;
    return path == target || (path.starts_with(target) && path[target.size()] == '/');
  };
  for (const auto& m : spec.mounts)
    if (under(m.target)) return m.target;
  std::vector<std::string> files;
  if (spec.etc_binds) files = {"/etc/hostname", "/etc/hosts"};
  if (!spec.resolv_conf.empty()) files.push_back("/etc/resolv.conf");
  for (const auto& f : files)
    if (under(f)) return f;
  return std::nullopt;
}

}  // namespace stack::engine
