// The tar stream of `stack cp` (POSIX ustar with pax extended headers, as docker cp sends and
// takes): entry headers written and read, and entry data pulled from a byte source. Pure
// format code, no file system: tree_copy.h walks and writes trees with it. Used by the CLI
// (host side) and the daemon (container side), so std only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace stack::tar {

enum class Kind : char {
  file = '0',
  hardlink = '1',
  symlink = '2',
  chardev = '3',
  blockdev = '4',
  directory = '5',
  fifo = '6',
};

struct Entry {
  Kind kind = Kind::file;
  std::string name;      // relative, '/'-separated; a directory's without its trailing '/'
  std::string linkname;  // symlink target, or the entry a hardlink names
  uint32_t mode = 0644;  // permission bits (07777)
  uint64_t uid = 0, gid = 0;
  uint64_t size = 0;  // of a file's data
  int64_t mtime = 0;  // unix seconds
  uint32_t devmajor = 0, devminor = 0;
};

// The header block(s) of E: a pax extended header first when a name, a size or an id does not
// fit ustar's fields. The data (E.size bytes) follows, then padding(E.size) zero bytes.
[[nodiscard]] std::string header(const Entry& e);
[[nodiscard]] inline size_t padding(uint64_t size) { return (512 - size % 512) % 512; }
// The end of an archive: two zero blocks.
[[nodiscard]] std::string trailer();

// Reads up to N bytes into BUF; 0 at the end of the stream.
using Source = std::function<Result<size_t>(char* buf, size_t n)>;

// Entries from a tar stream, one by one: next() skips what is left of the previous entry's
// data. Checksums are checked; a stream that ends inside an entry is an error.
class Reader {
 public:
  explicit Reader(Source source) : source_(std::move(source)) {}
  // The next entry; nullopt at the end of the archive (the zero blocks, or the stream's end
  // between entries). Entries of other kinds (sockets, GNU extensions) are skipped.
  [[nodiscard]] Result<std::optional<Entry>> next();
  // Up to N bytes of the current entry's data; 0 when it has all been read.
  [[nodiscard]] Result<size_t> read(char* buf, size_t n);

 private:
  Result<bool> read_exact(char* buf, size_t n);  // false: clean EOF before the first byte
  Result<void> skip(uint64_t n);

  Source source_;
  uint64_t left_ = 0;     // data bytes of the current entry not read yet
  uint64_t padding_ = 0;  // then these
};

// A name from an archive as a clean relative path ("" for the archive's top): leading '/',
// empty and '.' components dropped. Error for a '..' component.
[[nodiscard]] Result<std::string> clean_name(std::string_view name);

}  // namespace stack::tar
