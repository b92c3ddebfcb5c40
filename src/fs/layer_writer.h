// Writing the entries of a layer tar into its directory with descriptors only: each entry's
// parent is opened with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) from
// the layer's root, and the entry made with *at(2) calls that never follow its last component.
// So no name, symlink or hardlink in the tar reaches outside the layer. Private to src/fs.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <time.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace stack::fs {

class LayerWriter {
 public:
  // TARGET: an existing, empty directory (the layer under its temporary name).
  [[nodiscard]] static Result<LayerWriter> open(const std::filesystem::path& target);

  // Creates entry E (its clean relative name REL; "" is the layer's root), reading a regular
  // file's data from IN.
  [[nodiscard]] Result<void> add(archive* in, archive_entry* e, const std::string& rel);
  // ".wh..wh..opq" in REL's directory: that directory opaque. ".wh.NAME": NAME whited out.
  [[nodiscard]] Result<void> whiteout(const std::string& rel, std::string_view base);
  // Directory times, set last (creating entries in a directory changes its mtime).
  [[nodiscard]] Result<void> finish();

 private:
  explicit LayerWriter(UniqueFd root) : root_(std::move(root)) {}
  // The directory REL (relative to the root; "" is the root) opened O_PATH (READABLE: O_RDONLY,
  // for xattrs and times), resolved in the root. CREATE makes missing directories on the way
  // (0755, as docker does for implied ones).
  Result<UniqueFd> open_dir(const std::string& rel, bool create, bool readable = false);
  // The parent of REL, through a one-entry cache (most entries share their predecessor's).
  Result<int> parent_of(const std::string& rel);
  void forget_cache() {
    cached_.reset();
    cached_rel_.clear();
  }
  // Removes NAME from DIR whatever it is (a directory with its content).
  Result<void> remove_existing(int dir, const std::string& name, const std::string& rel);
  Result<void> set_metadata(int dir, const std::string& name, int fd, archive_entry* e,
                            bool is_link);
  Result<void> write_data(archive* in, int fd, int64_t size);

  UniqueFd root_;
  UniqueFd cached_;
  std::string cached_rel_;
  bool privileged_ = false;  // root: owners and device nodes are kept
  struct DirTime {
    std::string rel;
    mode_t mode;
    timespec mtime;
  };
  std::vector<DirTime> dir_times_;
};

}  // namespace stack::fs
