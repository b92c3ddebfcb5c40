// ImageStore::import, load and save: a rootfs (directory or tarball) becomes a one-layer image;
// OCI layouts and `docker save` tarballs go through image_archive.cpp. Imports are bounded
// (ImportOptions): refused up front without the space they need, stopped when they outgrow it.
// The _stream forms take a client's tar as bytes (the daemon's API): no client path is opened.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/files.h"
#include "common/log.h"
#include "common/scope_guard.h"
#include "fs/image_archive.h"
#include "fs/image_store.h"
#include "fs/import_meter.h"
#include "fs/layer_pack.h"
#include "fs/layer_unpack.h"
#include "fs/store_internal.h"

namespace stack::fs {

namespace {

// The bytes of the regular files under DIR (symlinks not followed); stops counting past LIMIT.
uint64_t tree_size(const stdfs::path& dir, uint64_t limit) {
  uint64_t total = 0;
  std::error_code ec;
  for (stdfs::recursive_directory_iterator it(dir, stdfs::directory_options::none, ec), end;
       !ec && it != end && total <= limit; it.increment(ec)) {
    std::error_code sec;
    auto st = it->symlink_status(sec);
    if (!sec && stdfs::is_regular_file(st)) total += it->file_size(sec);
  }
  return total;
}

// Refuses an import whose least NEED (WHY says what it is) is not free on ROOT's file system
// with the reserve kept.
Result<void> check_free(const stdfs::path& root, uint64_t need, const std::string& why,
                        const ImportOptions& options) {
  auto free = free_bytes(options, root);
  if (!free) return fail(free.error());
  if (*free < need + options.reserve_bytes)
    return fail("not enough space in " + root.string() + ": the import needs at least " +
                format_size(need) + " (" + why + "), " + format_size(*free) + " is free and " +
                format_size(options.reserve_bytes) + " must stay free");
  return {};
}

// Refuses an import over its size limit, or one whose least need is not free on the images'
// file system (with the reserve kept): before anything is written.
Result<void> check_import_space(const stdfs::path& root, const stdfs::path& src,
                                const ImportOptions& options) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) return fail_errno("stat " + src.string());
  uint64_t size = 0, need = 0;
  std::string why;
  if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
    need = 2 * size;  // the file as a blob, and unpacked: at least as large again
    why = "the " + format_size(size) + " file, kept as a blob and unpacked";
  } else if (S_ISDIR(st.st_mode)) {
    size = tree_size(src, options.max_bytes);
    need = size;  // unpacked again; the compressed blob comes on top
    why = "the " + format_size(size) + " of files, unpacked again, and a compressed copy";
  } else {
    return {};  // detect_source says what is wrong with it
  }
  if (size > options.max_bytes)
    return fail(S_ISDIR(st.st_mode)
                    ? "the files are larger than the import limit of " +
                          format_size(options.max_bytes)
                    : "the file is " + format_size(size) + ", larger than the import limit of " +
                          format_size(options.max_bytes));
  return check_free(root, need, why, options);
}

Result<void> copy_into(int in, const stdfs::path& src, BlobWriter& blob, ImportMeter& meter) {
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + src.string());
    }
    if (n == 0) return {};
    if (auto r = meter.add(static_cast<uint64_t>(n)); !r) return r;
    if (auto r = blob.write(buf, static_cast<size_t>(n)); !r) return r;
  }
}

Result<Descriptor> rootfs_image(ImageStore::Internal& store, const std::string& blob_hex,
                                bool existed, const ImportOptions& options,
                                ImageStore::Internal::Pin& pin);

// A rootfs as a one-layer image's manifest blob: a directory is packed as tar+gzip, a tarball
// kept byte for byte (its digest is the file's), then unpacked into its layer.
Result<Descriptor> import_rootfs(ImageStore::Internal& store, const stdfs::path& src, bool is_dir,
                                 const ImportOptions& options, ImageStore::Internal::Pin& pin) {
  std::string blob_hex;
  bool existed = false;
  if (is_dir) {
    std::string tmpl = (blobs_dir(store.root) / tmp_template()).string();
    UniqueFd out(::mkostemp(tmpl.data(), O_CLOEXEC));
    if (!out) return fail_errno("create a temporary blob in " + blobs_dir(store.root).string());
    auto tmp_guard = ScopeGuard([&] { ::unlink(tmpl.c_str()); });
    ::fchmod(out.get(), 0600);
    ImportMeter meter(options, store.root, "pack", 0);
    PackedBlob packed = FS_TRY(pack_directory(src, out.get(), &meter));
    if (::fsync(out.get()) != 0) return fail_errno("fsync " + tmpl);
    // pack_directory hashed what it wrote: the temporary file takes that digest as its name.
    blob_hex = packed.digest;
    pin.add(blob_hex);
    existed = has_blob(store.root, blob_hex);
    if (!existed && ::rename(tmpl.c_str(), blob_path(store.root, blob_hex).c_str()) != 0)
      return fail_errno("rename " + tmpl);
    if (!existed) tmp_guard.dismiss();
  } else {
    BlobWriter blob = FS_TRY(BlobWriter::create(store.root, pin_to(pin)));
    UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return fail_errno("open " + src.string());
    struct stat st {};
    ::fstat(in.get(), &st);
    ImportMeter meter(options, store.root, "copy", static_cast<uint64_t>(st.st_size));
    if (auto r = copy_into(in.get(), src, blob, meter); !r) return fail(r.error());
    meter.done();
    blob_hex = FS_TRY(blob.commit("", -1, &existed));
  }
  return rootfs_image(store, blob_hex, existed, options, pin);
}

// A rootfs tarball, in the store as blob BLOB_HEX (EXISTED: before this import), unpacked into
// its layer and made a one-layer image's manifest blob.
Result<Descriptor> rootfs_image(ImageStore::Internal& store, const std::string& blob_hex,
                                bool existed, const ImportOptions& options,
                                ImageStore::Internal::Pin& pin) {
  stdfs::path layer_blob = blob_path(store.root, blob_hex);
  // A blob this import made, which no image names yet, is not left behind on failure.
  auto guard = ScopeGuard([&] {
    if (!existed) ::unlink(layer_blob.c_str());
  });

  // The unpacked tar stream: its digest is the diff_id, its newest mtime the image's "created"
  // (not "now": re-importing the same content gives the same id).
  std::string tmpl = (layers_dir(store.root) / tmp_template()).string();
  if (!::mkdtemp(tmpl.data())) return fail_errno("create a temporary layer directory");
  stdfs::path tmp_layer = tmpl;
  auto layer_guard = ScopeGuard([&] { (void)remove_tree(tmp_layer); });
  ::chmod(tmp_layer.c_str(), 0755);
  ImportMeter unpacked(options, store.root, "unpack", 0);
  UnpackedLayer layer = FS_TRY(unpack_layer(layer_blob, tmp_layer, &unpacked));
  pin.add(layer.diff_id);
  {
    StoreLock lock = FS_TRY(StoreLock::acquire(store.root));
    if (!has_layer(store.root, layer.diff_id)) {
      stdfs::path final_layer = layers_dir(store.root) / layer.diff_id;
      if (::rename(tmp_layer.c_str(), final_layer.c_str()) != 0)
        return fail_errno("rename " + tmp_layer.string());
      layer_guard.dismiss();
    }
  }
  struct stat st {};
  ::stat(layer_blob.c_str(), &st);
  Manifest manifest;
  manifest.media_type = kMediaTypeManifest;
  manifest.layers.push_back(
      Descriptor{layer_media_type(layer.compression), "sha256:" + blob_hex, st.st_size, {}, {}});
  std::string config_json = render_config({"sha256:" + layer.diff_id}, layer.newest_mtime);
  pin.add(sha256_hex(config_json));
  std::string chex = FS_TRY(put_blob(store.root, config_json));
  manifest.config = Descriptor{std::string(kMediaTypeConfig),
                               "sha256:" + chex,
                               static_cast<int64_t>(config_json.size()),
                               {},
                               {}};
  std::string mtext = render_manifest(manifest);
  pin.add(sha256_hex(mtext));
  std::string mhex = FS_TRY(put_blob(store.root, mtext));
  guard.dismiss();
  return Descriptor{std::string(kMediaTypeManifest),
                    "sha256:" + mhex,
                    static_cast<int64_t>(mtext.size()),
                    {},
                    {}};
}

// Of the images an archive holds, the one `import NAME PATH` means: the only one, or the one the
// archive itself names NAME.
Result<ArchivedImage> pick(const std::vector<ArchivedImage>& images, const std::string& ref) {
  if (images.size() == 1) return images.front();
  std::string names;
  for (const auto& img : images) {
    for (const auto& n : img.names) {
      if (n == ref) return img;
      names += (names.empty() ? "" : ", ") + familiar_reference(n);
    }
  }
  return fail("the archive holds " + std::to_string(images.size()) + " images (" +
              (names.empty() ? "none named" : names) +
              "): name one of them, or use stack image load");
}

// Every image of an archive under the names it carries (untagged when it carries none).
Result<std::vector<Image>> name_loaded(ImageStore::Internal& store,
                                       const std::vector<ArchivedImage>& images) {
  std::vector<Image> out;
  for (const auto& a : images) {
    if (a.names.empty()) out.push_back(FS_TRY(store.commit(NewImage{"", a.manifest, 0, ""})));
    for (const auto& name : a.names)
      out.push_back(FS_TRY(store.commit(NewImage{name, a.manifest, 0, ""})));
  }
  return out;
}

// A client's tar, received into the store as a blob (whatever it holds: the kind is read from
// it afterwards).
struct Received {
  std::string hex;
  bool existed = false;  // the store had that blob before
};

// Reads SOURCE into a blob, held to the SIZE announced (0: unknown) and to OPTIONS' limit and
// reserve. No progress is reported here: the client, which sends, shows its own (and while it
// sends it does not read, so lines the daemon wrote now could only pile up in the socket).
Result<Received> receive(ImageStore::Internal& store, const ByteSource& source, uint64_t size,
                         const ImportOptions& options, ImageStore::Internal::Pin& pin) {
  if (size > options.max_bytes)
    return fail("the tar is " + format_size(size) + ", larger than the import limit of " +
                format_size(options.max_bytes));
  if (size > 0)
    if (auto r = check_free(store.root, 2 * size,
                            "the " + format_size(size) + " file, kept as a blob and unpacked",
                            options);
        !r)
      return fail(r.error());
  ImportOptions quiet = options;
  quiet.progress = nullptr;
  BlobWriter blob = FS_TRY(BlobWriter::create(store.root, pin_to(pin)));
  ImportMeter meter(quiet, store.root, "copy", size);
  std::vector<char> buf(1 << 16);
  for (;;) {
    auto n = source(buf.data(), buf.size());
    if (!n) return fail(n.error().wrap("receive the tar"));
    if (*n == 0) break;
    if (size > 0 && blob.size() + *n > size)
      return fail("the client sent more than the " + std::to_string(size) + " bytes it announced");
    if (auto r = meter.add(*n); !r) return fail(r.error());
    if (auto r = blob.write(buf.data(), *n); !r) return fail(r.error());
  }
  if (size > 0 && blob.size() != size)
    return fail("the stream ended after " + std::to_string(blob.size()) + " of the " +
                std::to_string(size) + " bytes announced");
  if (blob.size() == 0) return fail("no tar received: the stream was empty");
  Received out;
  out.hex = FS_TRY(blob.commit("", -1, &out.existed));
  return out;
}

// The received tar of an archive is no image's blob once read: removed, unless the store had
// it before or another import holds it too (a pin besides ours).
void drop_received(ImageStore::Internal& store, const Received& got) {
  if (got.existed) return;
  auto lock = StoreLock::acquire(store.root);
  if (!lock) return;  // a later GC collects it
  std::lock_guard<std::mutex> g(store.mu);
  if (store.pins.count(got.hex) <= 1) ::unlink(blob_path(store.root, got.hex).c_str());
}

}  // namespace

Result<Image> ImageStore::import_stream(std::string_view reference, const ByteSource& source,
                                        uint64_t size, const ImportOptions& options) {
  std::string ref = STACK_TRY_CTX(normalize_reference(reference), "import");
  std::string ctx = "import " + familiar_reference(ref);
  if (auto r = ensure_dirs(root_); !r) return fail(r.error().wrap(ctx));
  auto pin = internal_->pin();
  Received got = STACK_TRY_CTX(receive(*internal_, source, size, options, pin), ctx);
  stdfs::path tar = blob_path(root_, got.hex);
  auto kind = detect_source(tar);
  if (!kind) {
    drop_received(*internal_, got);
    return fail(kind.error().wrap(ctx));
  }
  Descriptor manifest;
  if (*kind == SourceKind::rootfs_tar) {
    manifest = STACK_TRY_CTX(rootfs_image(*internal_, got.hex, got.existed, options, pin), ctx);
  } else {
    auto images = read_archive(*internal_, tar, *kind, options, Platform{}, pin);
    drop_received(*internal_, got);
    if (!images) return fail(images.error().wrap(ctx));
    manifest = STACK_TRY_CTX(pick(*images, ref), ctx).manifest;
  }
  Image img = STACK_TRY_CTX(internal_->commit(NewImage{ref, manifest, 0, ""}), ctx);
  log::get("fs")->info("imported image ref={} id={} layers={} from=stream", ref, img.id,
                       img.layers.size());
  return img;
}

Result<std::vector<Image>> ImageStore::load_stream(const ByteSource& source, uint64_t size,
                                                   const ImportOptions& options) {
  std::string ctx = "load";
  if (auto r = ensure_dirs(root_); !r) return fail(r.error().wrap(ctx));
  auto pin = internal_->pin();
  Received got = STACK_TRY_CTX(receive(*internal_, source, size, options, pin), ctx);
  auto guard = ScopeGuard([&] { drop_received(*internal_, got); });
  stdfs::path tar = blob_path(root_, got.hex);
  SourceKind kind = STACK_TRY_CTX(detect_source(tar), ctx);
  if (kind == SourceKind::rootfs_tar)
    return fail(ctx +
                ": neither an OCI image layout nor a docker save tarball (a root "
                "filesystem is imported with: stack image import NAME PATH)");
  auto images = STACK_TRY_CTX(read_archive(*internal_, tar, kind, options, Platform{}, pin), ctx);
  auto out = STACK_TRY_CTX(name_loaded(*internal_, images), ctx);
  log::get("fs")->info("loaded images from=stream count={}", out.size());
  return out;
}

Result<Image> ImageStore::import(std::string_view reference, const std::filesystem::path& path,
                                 const ImportOptions& options) {
  std::string ref = STACK_TRY_CTX(normalize_reference(reference), "import");
  std::string ctx = "import " + familiar_reference(ref) + " from " + path.string();
  if (auto r = ensure_dirs(root_); !r) return fail(r.error().wrap(ctx));
  SourceKind kind = STACK_TRY_CTX(detect_source(path), ctx);
  if (auto r = check_import_space(root_, path, options); !r) return fail(r.error().wrap(ctx));
  auto pin = internal_->pin();
  Descriptor manifest;
  if (kind == SourceKind::rootfs_dir || kind == SourceKind::rootfs_tar) {
    manifest = STACK_TRY_CTX(
        import_rootfs(*internal_, path, kind == SourceKind::rootfs_dir, options, pin), ctx);
  } else {
    auto images =
        STACK_TRY_CTX(read_archive(*internal_, path, kind, options, Platform{}, pin), ctx);
    manifest = STACK_TRY_CTX(pick(images, ref), ctx).manifest;
  }
  Image img = STACK_TRY_CTX(internal_->commit(NewImage{ref, manifest, 0, ""}), ctx);
  log::get("fs")->info("imported image ref={} id={} layers={}", ref, img.id, img.layers.size());
  return img;
}

Result<std::vector<Image>> ImageStore::load(const std::filesystem::path& path,
                                            const ImportOptions& options) {
  std::string ctx = "load " + path.string();
  if (auto r = ensure_dirs(root_); !r) return fail(r.error().wrap(ctx));
  SourceKind kind = STACK_TRY_CTX(detect_source(path), ctx);
  if (kind == SourceKind::rootfs_dir || kind == SourceKind::rootfs_tar)
    return fail(ctx +
                ": neither an OCI image layout nor a docker save tarball (a root "
                "filesystem is imported with: stack image import NAME PATH)");
  if (auto r = check_import_space(root_, path, options); !r) return fail(r.error().wrap(ctx));
  auto pin = internal_->pin();
  auto images = STACK_TRY_CTX(read_archive(*internal_, path, kind, options, Platform{}, pin), ctx);
  auto out = STACK_TRY_CTX(name_loaded(*internal_, images), ctx);
  log::get("fs")->info("loaded images from={} count={}", path.string(), out.size());
  return out;
}

Result<void> ImageStore::save_stream(const std::vector<std::string>& references,
                                     const ByteSink& sink, const ImportOptions& options) const {
  std::string ctx = "save";
  std::vector<SavedImage> images;
  for (const auto& r : references) {
    Image img = STACK_TRY_CTX(get(r), ctx);
    auto canonical = normalize_reference(r);
    std::string name =
        canonical && std::find(img.tags.begin(), img.tags.end(), *canonical) != img.tags.end()
            ? *canonical
            : img.reference;
    auto same = std::find_if(images.begin(), images.end(),
                             [&](const SavedImage& s) { return s.image.id == img.id; });
    if (same == images.end()) {
      images.push_back({img, {}});
      same = images.end() - 1;
    }
    if (!name.empty() &&
        std::find(same->names.begin(), same->names.end(), name) == same->names.end())
      same->names.push_back(name);
  }
  if (images.empty()) return fail(ctx + ": no image named");
  // Pinned: an `image rm` meanwhile must not pull blobs from under the writer.
  std::vector<std::string> hexes;
  for (const auto& s : images) {
    hexes.push_back(s.image.manifest_digest.substr(7));
    hexes.push_back(s.image.id.substr(7));
  }
  auto pin = internal_->pin(hexes);
  if (auto r = write_archive(root_, images, sink, options); !r) return fail(r.error().wrap(ctx));
  return {};
}

Result<void> ImageStore::save(const std::vector<std::string>& references,
                              const std::filesystem::path& out,
                              const ImportOptions& options) const {
  std::string ctx = "save to " + out.string();
  stdfs::path dir = out.parent_path().empty() ? stdfs::path(".") : out.parent_path();
  std::string tmpl = (dir / (".stack-save-" + std::to_string(::getpid()) + "-XXXXXX")).string();
  UniqueFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd) return fail_errno(ctx + ": create a temporary file in " + dir.string());
  auto guard = ScopeGuard([&] { ::unlink(tmpl.c_str()); });
  ::fchmod(fd.get(), 0644);
  auto sink = [&](std::string_view data) -> Result<void> {
    while (!data.empty()) {
      ssize_t n = ::write(fd.get(), data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail_errno("write " + tmpl);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  };
  if (auto r = save_stream(references, sink, options); !r) return fail(r.error().wrap(ctx));
  if (::fsync(fd.get()) != 0) return fail_errno(ctx + ": fsync");
  if (::rename(tmpl.c_str(), out.c_str()) != 0) return fail_errno(ctx + ": rename");
  guard.dismiss();
  return {};
}

}  // namespace stack::fs
