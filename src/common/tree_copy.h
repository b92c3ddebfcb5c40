// `stack cp`'s two halves on any side: a file tree packed into a tar stream, and a tar stream
// unpacked into a directory, with docker cp's rules for where things land. Every path is
// resolved under a root descriptor with openat2 RESOLVE_IN_ROOT when asked (the daemon: the
// container's root, so a symlink the container planted is followed as the container sees it
// and never reaches a host path); entry names never leave the destination (a '..' is refused,
// the last component is never followed). Blocking file I/O: the daemon runs it off its loop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/tar.h"
#include "common/unique_fd.h"

namespace stack::copy {

// Ids between the tree's side and the archive's (a user-namespaced container's files are
// owned by shifted host ids); nullopt for an id that has no image on the other side.
using IdMap = std::function<std::optional<uint64_t>(uint64_t)>;

// Where PATH is looked up: under ROOT (a directory descriptor) with RESOLVE_IN_ROOT, or, with
// in_root false, as the caller's own path (ROOT is AT_FDCWD or a directory for relative ones).
struct Tree {
  int root = -1;
  bool in_root = true;
};

// Opens PATH under TREE with FLAGS (O_NOFOLLOW: its last component is not followed).
[[nodiscard]] Result<UniqueFd> open_in(const Tree& tree, const std::string& path, int flags);

// Whether a copy's source names a directory's contents ("dir/." as docker cp takes it).
[[nodiscard]] bool names_contents(std::string_view path);

struct PackOptions {
  IdMap uid, gid;       // tree -> archive; empty: kept
  std::string name;     // the top entry's name in the archive; "": SOURCE's last component
};

// PATH with its last component followed while it is a symlink (`cp -L`), each step looked up
// under TREE as open_in does: in a container's tree, a link never leads out of its root.
[[nodiscard]] Result<std::string> follow_links(const Tree& tree, const std::string& path);

// Writes SOURCE (a file, directory, symlink...) under TREE as a tar stream to SINK, named by
// its last component (or its contents, unnamed, for "dir/."), ending with the trailer.
// Symlinks inside are archived as links, never followed; sockets are skipped.
[[nodiscard]] Result<void> pack(const Tree& tree, const std::string& source,
                                const PackOptions& options,
                                const std::function<Result<void>(std::string_view)>& sink);

// Where an archive goes, by docker cp's rules for DEST: an existing directory receives the
// archive's entries as they are named; otherwise the archive's top entry becomes DEST itself
// (renamed to its last component, in its parent directory, which must exist).
struct Destination {
  std::string dir;                    // the directory entries land in (a path under the tree)
  std::optional<std::string> rename;  // the new name of the archive's top entry
  bool was_file = false;              // DEST exists and is not a directory
  bool wants_dir = false;             // DEST was written with a trailing '/'
};
// CONTENTS: the archive holds a directory's contents (the source was "dir/.", or `-`): DEST is
// a directory, made when missing (with its missing parents too when PARENTS, as mkdir -p).
[[nodiscard]] Result<Destination> destination(const Tree& tree, const std::string& dest,
                                              bool contents, bool parents = false);

struct UnpackOptions {
  // Owner of what is written: the archive's ids through these maps when set (archive -> tree);
  // else OWNER when set; else the writer's own.
  IdMap uid, gid;
  std::optional<std::pair<uid_t, gid_t>> owner;
};

struct Unpacked {
  uint64_t entries = 0, bytes = 0;
};

// Reads every entry of READER into DEST under TREE.
[[nodiscard]] Result<Unpacked> unpack(const Tree& tree, const Destination& dest,
                                      tar::Reader& reader, const UnpackOptions& options);

}  // namespace stack::copy
