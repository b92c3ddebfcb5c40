// The state root is root's alone (DESIGN.md, "State and paths"): directories 0700, files 0600,
// so no host user reaches the state database (it may hold secrets), an image layer (device
// nodes, a 1777 /tmp shared by every container) or a container's writable layer (setuid files
// its root left there). Knows the root's layout only to tighten what older versions made.
#pragma once

#include <filesystem>

#include "common/result.h"

namespace stack {

// Creates ROOT, containers/ and images/ as 0700 directories, and tightens what a version before
// this one left open under ROOT: the directories stack made (containers/<name>, images/blobs,
// images/layers, ...) to 0700, its own files (state.db and its WAL, logs, exit records, blobs,
// index.json) to 0600. Never descends into a layer or a container's root filesystem, and leaves
// the files a container reads through bind mounts (hosts, hostname, resolv.conf) as they are:
// the 0700 directories above them are what keeps host users out. Symlinks are never followed.
[[nodiscard]] Result<void> secure_state_root(const std::filesystem::path& root);

// Creates DIR (and missing parents) and makes DIR itself 0700, whatever it was.
[[nodiscard]] Result<void> make_private_dir(const std::filesystem::path& dir);

}  // namespace stack
