// Test-only tarball builder for the image store tests: writes arbitrary (also malicious) entries
// with libarchive, plain or gzip/zstd compressed, with a fixed mtime for reproducible bytes.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace stack::test {

inline constexpr long kTarMtime = 1700000000;

struct TarEntry {
  std::string name;
  char type = 'f';  // f file, d directory, l symlink, h hardlink
  std::string data;
  std::string link;
  unsigned mode = 0644;
};

inline TarEntry tar_file(std::string name, std::string data = "", unsigned mode = 0644) {
  return TarEntry{std::move(name), 'f', std::move(data), "", mode};
}
inline TarEntry tar_dir(std::string name) { return TarEntry{std::move(name), 'd', "", "", 0755}; }
inline TarEntry tar_symlink(std::string name, std::string target) {
  return TarEntry{std::move(name), 'l', "", std::move(target), 0777};
}
inline TarEntry tar_hardlink(std::string name, std::string target) {
  return TarEntry{std::move(name), 'h', "", std::move(target), 0644};
}

enum class TarCompression { none, gzip, zstd };

inline void write_tar(const std::filesystem::path& path, const std::vector<TarEntry>& entries,
                      TarCompression c = TarCompression::none) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (c == TarCompression::gzip) archive_write_add_filter_gzip(a);
  if (c == TarCompression::zstd) archive_write_add_filter_zstd(a);
  if (archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK)
    throw std::runtime_error("write_tar: open failed");
  for (const auto& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.name.c_str());
    archive_entry_set_mtime(e, kTarMtime, 0);
    archive_entry_set_perm(e, t.mode);
    switch (t.type) {
      case 'd':
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, 0755);
        break;
      case 'l':
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, t.link.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, t.link.c_str());
        archive_entry_set_size(e, 0);
        break;
      default:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(t.data.size()));
    }
    archive_write_header(a, e);
    if (t.type == 'f' && !t.data.empty()) archive_write_data(a, t.data.data(), t.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

}  // namespace stack::test
