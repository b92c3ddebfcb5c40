// `image save`: one tar that is both an OCI image layout (oci-layout, index.json, blobs/sha256)
// and a `docker save` tarball (manifest.json naming the same blobs), as docker 25 writes it, so
// skopeo's oci-archive:, podman load and docker load all read it. Reads the store only.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>

#include "common/unique_fd.h"
#include "fs/image_archive.h"
#include "fs/import_meter.h"
#include "fs/store_internal.h"

namespace stack::fs {

namespace {

using nlohmann::json;

struct WriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

Error archive_error(archive* a, std::string_view context) {
  const char* msg = archive_error_string(a);
  return Error{std::string(context) + ": " + (msg ? msg : "unknown libarchive error")};
}

class TarWriter {
 public:
  explicit TarWriter(archive* a) : a_(a) {}

  Result<void> dir(const std::string& name) {
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFDIR);
    archive_entry_set_perm(e.get(), 0755);
    if (archive_write_header(a_, e.get()) != ARCHIVE_OK) return fail(archive_error(a_, name));
    return {};
  }

  Result<void> text(const std::string& name, std::string_view content) {
    if (auto r = header(name, static_cast<int64_t>(content.size())); !r) return r;
    if (archive_write_data(a_, content.data(), content.size()) < 0)
      return fail(archive_error(a_, name));
    return {};
  }

  Result<void> file(const std::string& name, const stdfs::path& from, ImportMeter& meter) {
    UniqueFd fd(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + from.string());
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail_errno("stat " + from.string());
    if (auto r = header(name, st.st_size); !r) return r;
    char buf[1 << 16];
    for (int64_t left = st.st_size; left > 0;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail_errno("read " + from.string(), n == 0 ? EIO : errno);
      n = static_cast<ssize_t>(std::min<int64_t>(n, left));
      if (archive_write_data(a_, buf, static_cast<size_t>(n)) < 0)
        return fail(archive_error(a_, name));
      if (auto r = meter.add(static_cast<uint64_t>(n)); !r) return r;
      left -= n;
    }
    return {};
  }

 private:
  Result<void> header(const std::string& name, int64_t size) {
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), size);
    if (archive_write_header(a_, e.get()) != ARCHIVE_OK) return fail(archive_error(a_, name));
    return {};
  }

  archive* a_;
};

// libarchive's writer hands its blocks to this; a sink's error is kept to be returned as is.
struct SinkState {
  const ByteSink* sink;
  std::optional<Error> error;
};

la_ssize_t write_to_sink(archive* a, void* data, const void* buf, size_t n) {
  auto* st = static_cast<SinkState*>(data);
  auto r = (*st->sink)(std::string_view(static_cast<const char*>(buf), n));
  if (!r) {
    st->error = r.error();
    archive_set_error(a, EIO, "%s", r.error().message.c_str());
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

}  // namespace

Result<void> write_archive(const stdfs::path& root, const std::vector<SavedImage>& images,
                           const ByteSink& sink, const ImportOptions& options) {
  OciIndex index;
  json docker = json::array();
  std::vector<std::string> blobs;  // hexes, in order of first use
  std::set<std::string> seen;
  auto use = [&](const std::string& digest) {
    std::string hex = digest.substr(7);
    if (seen.insert(hex).second) blobs.push_back(hex);
    return "blobs/sha256/" + hex;
  };
  uint64_t total = 0;
  for (const auto& s : images) {
    std::string mtext = FS_TRY(read_blob(root, s.image.manifest_digest));
    Manifest m = FS_TRY(parse_manifest(mtext));
    Descriptor d{m.media_type, s.image.manifest_digest, static_cast<int64_t>(mtext.size()), {}, {}};
    if (s.names.empty()) index.manifests.push_back(d);
    json tags = json::array();
    for (const auto& name : s.names) {
      Descriptor named = d;
      named.annotations[std::string(kRefNameAnnotation)] = name;
      named.annotations[std::string(kContainerdNameAnnotation)] = name;
      index.manifests.push_back(named);
      // Fully qualified: docker load reads it as well as "busybox:latest", and podman load
      // would put "localhost/" before a name without a registry.
      tags.push_back(name);
    }
    use(s.image.manifest_digest);
    json layers = json::array();
    for (const auto& l : m.layers) {
      if (!seen.count(l.digest.substr(7))) total += static_cast<uint64_t>(l.size);
      layers.push_back(use(l.digest));
    }
    docker.push_back({{"Config", use(m.config.digest)}, {"RepoTags", tags}, {"Layers", layers}});
  }

  std::unique_ptr<archive, WriteDeleter> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  SinkState state{&sink, std::nullopt};
  if (archive_write_open(a.get(), &state, nullptr, write_to_sink, nullptr) != ARCHIVE_OK)
    return fail(archive_error(a.get(), "open"));
  // A sink's failure (the client gone) is its own error, not libarchive's rewording of it.
  auto failed = [&](Result<void> r) -> Result<void> {
    if (state.error) return fail(*state.error);
    return r;
  };
  TarWriter tar(a.get());
  ImportOptions unbounded = options;
  unbounded.max_bytes = UINT64_MAX;
  unbounded.free_bytes = [](const stdfs::path&) -> Result<uint64_t> { return UINT64_MAX; };
  ImportMeter meter(unbounded, root, "write", total);
  if (auto r = tar.text("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"); !r) return failed(r);
  if (auto r = tar.dir("blobs/"); !r) return failed(r);
  if (auto r = tar.dir("blobs/sha256/"); !r) return failed(r);
  for (const auto& hex : blobs)
    if (auto r = tar.file("blobs/sha256/" + hex, blob_path(root, hex), meter); !r)
      return failed(r);
  if (auto r = tar.text("index.json", render_index(index)); !r) return failed(r);
  if (auto r = tar.text("manifest.json", docker.dump()); !r) return failed(r);
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    return failed(fail(archive_error(a.get(), "close")));
  meter.done();
  return {};
}

}  // namespace stack::fs
