// Storage of a service on this host (see volumes.h). Building the mounts is pure but for
// reading secret sources; volume directories and secret files on the host are
// volumes_host.cpp's.
#include "reconciler/volumes.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "common/files.h"
#include "common/log.h"
#include "common/sha256.h"
#include "engine/container.h"

namespace stack::reconciler {

namespace {

constexpr size_t kMaxSecretBytes = 16 << 20;

std::string where(const spec::Service& svc, const spec::SourcePos& pos) {
  return (pos.line ? pos.str() : svc.pos.str()) + ": service \"" + svc.name + "\"";
}

// A relative path with no ".." component: what Docker takes as a volume subpath.
bool plain_subpath(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  for (const auto& part : std::filesystem::path(p))
    if (part == "..") return false;
  return true;
}

// "size=64m,mode=1777" of a `tmpfs:` entry or a tmpfs mount into tmpfs(5) options; "ro" into
// RO. Options the kernel's tmpfs does not take are refused by name.
Result<std::string> tmpfs_options(const std::string& given, bool& ro) {
  std::string out;
  size_t from = 0;
  while (from <= given.size() && !given.empty()) {
    size_t comma = given.find(',', from);
    if (comma == std::string::npos) comma = given.size();
    std::string o = given.substr(from, comma - from);
    from = comma + 1;
    std::string key = o.substr(0, o.find('='));
    if (o == "ro")
      ro = true;
    else if (o == "rw" || o.empty())
      continue;
    else if (key == "size" || key == "mode" || key == "uid" || key == "gid" || key == "nr_inodes")
      out += (out.empty() ? "" : ",") + o;
    else
      return fail("tmpfs option \"" + o +
                  "\" is not supported (size, mode, uid, gid, "
                  "nr_inodes, ro, rw)");
  }
  return out;
}

std::string octal(int mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%o", mode);
  return buf;
}

// The mounts of SVC's `volumes:` (volumes_from reuses them).
Result<void> volume_mounts(const Paths& paths, const spec::Stack& stack, const spec::Service& svc,
                           const std::filesystem::path& dir, bool force_ro,
                           const fs::ImageStore* images, std::vector<model::BindMount>& out) {
  for (const auto& m : svc.volumes) {
    model::BindMount b;
    b.target = m.target;
    b.read_only = m.read_only || force_ro;
    if (!m.selinux.empty()) {
      static bool said = false;  // once per daemon
      if (!said)
        log::get("reconciler")
            ->warn("bind.selinux {} ignored: stack sets no SELinux labels", m.selinux);
      said = true;
    }
    if (m.type == "bind") {
      b.source = m.source;
      b.propagation = m.propagation;
      b.create_source = m.create_host_path;
      using Recursive = model::BindMount::Recursive;
      b.recursive = m.recursive == "disabled"   ? Recursive::kTopOnly
                    : m.recursive == "writable" ? Recursive::kWritableBelow
                                                : Recursive::kAll;
    } else if (m.type == "volume") {
      if (!m.subpath.empty() && !plain_subpath(m.subpath))
        return fail(where(svc, m.pos) + ": volume subpath \"" + m.subpath +
                    "\" must be a relative path without \"..\"");
      b.subpath = m.subpath;
      b.seed = !m.nocopy;
      if (m.source.empty()) {  // anonymous: lives and dies with the container
        b.source = dir / "volumes" / sha256_hex(m.target).substr(0, 16);
      } else {
        const spec::Volume* v = stack.find_volume(m.source.string());
        if (!v)
          return fail(where(svc, m.pos) + ": no top-level volume \"" + m.source.string() + "\"");
        b.source = volume_dir(paths, v->name);
      }
    } else if (m.type == "tmpfs") {
      b.kind = model::BindMount::Kind::kTmpfs;
      if (m.tmpfs_size) b.options = "size=" + std::to_string(*m.tmpfs_size);
      if (m.tmpfs_mode)
        b.options += (b.options.empty() ? "mode=" : ",mode=") + octal(*m.tmpfs_mode);
    } else if (m.type == "image") {
      // Read-only whatever the file says, as Docker mounts an image; the init resolves the
      // subpath inside the image's tree (a symlink in the image cannot lead out of it).
      if (!m.subpath.empty() && !plain_subpath(m.subpath))
        return fail(where(svc, m.pos) + ": image subpath \"" + m.subpath +
                    "\" must be a relative path without \"..\"");
      if (!images)
        return fail(where(svc, m.pos) + ": image " + m.source.string() + ": no image store");
      auto image = images->get(m.source.string());
      if (!image) return fail(image.error().wrap(where(svc, m.pos) + ": image mount"));
      if (image->layers.empty())
        return fail(where(svc, m.pos) + ": image " + m.source.string() + " has no layers");
      b.kind = model::BindMount::Kind::kImage;
      b.read_only = true;
      b.subpath = m.subpath;
      b.layers = image->layers;
      b.image_id = image->id;
      b.create_source = false;
    } else {
      return fail(where(svc, m.pos) + ": mount type " + m.type + " is not supported");
    }
    out.push_back(std::move(b));
  }
  return {};
}

struct SecretSource {
  const spec::FileRef* ref;
  std::string content;
};

Result<std::vector<SecretSource>> read_secrets(const spec::Stack& stack, const spec::Service& svc) {
  std::vector<SecretSource> out;
  auto add = [&](const std::vector<spec::FileRef>& refs, const std::vector<spec::FileObject>& objs,
                 const char* kind) -> Result<void> {
    for (const auto& ref : refs) {
      auto it = std::find_if(objs.begin(), objs.end(),
                             [&](const spec::FileObject& o) { return o.key == ref.source; });
      std::string what = std::string(kind) + " \"" + ref.source + "\"";
      if (it == objs.end()) return fail(where(svc, ref.pos) + ": no top-level " + what);
      if (it->external)
        return fail(where(svc, ref.pos) + ": " + what +
                    " is external: there is no Swarm store on a single host; give it a file");
      SecretSource s{&ref, ""};
      if (!it->file.empty()) {
        auto text = read_file(it->file, kMaxSecretBytes, std::string(kind) + "s");
        if (!text) return fail(text.error().wrap(where(svc, ref.pos) + ": " + what));
        s.content = std::move(*text);
      } else if (!it->environment.empty()) {
        if (!it->environment_value)
          return fail(where(svc, ref.pos) + ": " + what + ": variable " + it->environment +
                      " is not set");
        s.content = *it->environment_value;
      } else if (it->content) {
        s.content = *it->content;
      }
      out.push_back(std::move(s));
    }
    return {};
  };
  if (auto r = add(svc.secrets, stack.secrets, "secret"); !r) return fail(r.error());
  if (auto r = add(svc.configs, stack.configs, "config"); !r) return fail(r.error());
  return out;
}

// A secret's or config's uid or gid: a number, or a name the image's /etc/passwd or
// /etc/group gives (read from the image's layers, every path resolved inside the layer: never
// the host's files).
Result<uint32_t> owner_id(const spec::Service& svc, const spec::FileRef& ref, const std::string& v,
                          const char* what, const std::vector<std::filesystem::path>& layers) {
  if (v.empty()) return 0u;
  char* end = nullptr;
  unsigned long n = std::strtoul(v.c_str(), &end, 10);
  if (*end == '\0' && n <= 0xfffffffeUL) return static_cast<uint32_t>(n);
  if (v.find_first_of(":\n") == std::string::npos) {
    if (std::string(what) == "gid") {
      if (auto gid = engine::resolve_group(v, layers)) return static_cast<uint32_t>(*gid);
    } else {
      model::ProcessSpec p;
      if (engine::resolve_user(v, layers, p)) return static_cast<uint32_t>(p.uid);
    }
  }
  return fail(where(svc, ref.pos) + ": " + what + " \"" + v + "\" is neither a number nor a " +
              (std::string(what) == "gid" ? "group in the image's /etc/group"
                                          : "user in the image's /etc/passwd"));
}

}  // namespace

std::filesystem::path volume_dir(const Paths& paths, const std::string& name) {
  return paths.root / "volumes" / name;
}

Result<void> build_storage(const Paths& paths, const spec::Stack& stack, const spec::Service& svc,
                           RuntimeRecord& r, const std::vector<std::string>& image_volumes,
                           const fs::ImageStore* images) {
  auto& s = r.spec;
  // volumes_from first: the service's own mounts may cover a target of the other's.
  if (auto it = svc.extra.find("volumes_from"); it != svc.extra.end() && it->is_array())
    for (const auto& v : *it) {
      std::string from = v.get<std::string>();
      bool ro = false;
      if (auto colon = from.rfind(':');
          colon != std::string::npos &&
          (from.substr(colon) == ":ro" || from.substr(colon) == ":rw")) {
        ro = from.substr(colon) == ":ro";
        from.resize(colon);
      }
      if (from.rfind("container:", 0) == 0) continue;  // at creation: container_volumes_from
      if (from.rfind("service:", 0) == 0) from = from.substr(8);
      const spec::Service* other = stack.find(from);
      if (!other) return fail(where(svc, svc.pos) + ": volumes_from: no service \"" + from + "\"");
      auto dir = paths.root / "containers" / planner::container_name(stack.name, from, 1);
      if (auto m = volume_mounts(paths, stack, *other, dir, ro, images, s.mounts); !m) return m;
    }
  if (auto m = volume_mounts(paths, stack, svc, s.dir, false, images, s.mounts); !m) return m;
  for (const auto& m : svc.volumes)  // `stack volume inspect` shows them (daemon_volumes.cpp)
    if (m.type == "volume" && m.source.empty() && !m.volume_labels.empty())
      r.volume_labels[m.target] = m.volume_labels;
  for (const auto& target : image_volumes) {
    bool covered = std::any_of(s.mounts.begin(), s.mounts.end(),
                               [&](const model::BindMount& m) { return m.target == target; });
    if (covered || target.empty() || target[0] != '/') continue;
    model::BindMount b{s.dir / "volumes" / sha256_hex(target).substr(0, 16), target, false};
    b.seed = true;
    s.mounts.push_back(std::move(b));
  }
  for (const auto& t : svc.tmpfs) {
    model::BindMount b;
    b.kind = model::BindMount::Kind::kTmpfs;
    auto colon = t.find(':');
    b.target = t.substr(0, colon);
    auto opts = tmpfs_options(colon == std::string::npos ? "" : t.substr(colon + 1), b.read_only);
    if (!opts) return fail(opts.error().wrap(where(svc, svc.pos) + ": tmpfs " + b.target));
    b.options = *opts;
    s.mounts.push_back(std::move(b));
  }
  s.read_only_root = svc.read_only;
  if (auto it = svc.extra.find("shm_size"); it != svc.extra.end() && it->is_number_integer())
    s.shm_size = it->get<int64_t>();

  auto secrets = read_secrets(stack, svc);
  if (!secrets) return fail(secrets.error());
  auto contents = std::make_shared<std::vector<std::string>>();
  for (size_t i = 0; i < secrets->size(); i++) {
    const auto& src = (*secrets)[i];
    auto uid = owner_id(svc, *src.ref, src.ref->uid, "uid", s.layers);
    if (!uid) return fail(uid.error());
    auto gid = owner_id(svc, *src.ref, src.ref->gid, "gid", s.layers);
    if (!gid) return fail(gid.error());
    model::SecretFile f;
    f.path = paths.run_root / "secrets" / s.name / std::to_string(i);
    f.uid = *uid;
    f.gid = *gid;
    f.mode = src.ref->mode.value_or(0444);
    std::string target = src.ref->target;
    r.secret_files.push_back(f);
    contents->push_back(src.content);
    model::BindMount b;
    b.source = f.path;
    b.target = target;
    b.read_only = true;
    b.create_source = false;
    s.mounts.push_back(std::move(b));
  }
  if (!contents->empty()) r.secret_contents = std::move(contents);
  return {};
}

Result<std::string> secrets_digest(const spec::Stack& stack, const spec::Service& svc) {
  auto secrets = read_secrets(stack, svc);
  if (!secrets) return fail(secrets.error());
  if (secrets->empty()) return std::string();
  std::string all;
  for (const auto& s : *secrets) all += sha256_hex(s.content);
  return sha256_hex(all);
}

Result<std::vector<planner::DesiredVolume>> desired_volumes(const Paths& paths,
                                                            const spec::Stack& stack) {
  std::vector<planner::DesiredVolume> out;
  for (const auto& v : stack.volumes) {
    if (v.external) {
      if (::access(volume_dir(paths, v.name).c_str(), F_OK) != 0)
        return fail(v.pos.str() + ": external volume \"" + v.name +
                    "\" does not exist (make it with `stack volume create " + v.name + "`)");
      continue;
    }
    auto c = std::make_shared<model::VolumeConfig>();
    c->name = v.name;
    c->project = stack.name;
    c->driver_opts = v.driver_opts;
    c->labels = v.labels;
    // The labels of the mounts that use it, for when it is made (the first service's value
    // of a key, and the top-level volume's own over both); an existing volume keeps its own.
    for (const auto& svc : stack.services)
      for (const auto& m : svc.volumes)
        if (m.type == "volume" && m.source == v.key) c->labels.insert(m.volume_labels.begin(),
                                                                       m.volume_labels.end());
    out.push_back({v.name, std::move(c)});
  }
  return out;
}


namespace {
// "NAME" and whether ":ro" was asked, of a volumes_from "container:NAME[:ro|:rw]"; nullopt for
// any other entry.
std::optional<std::pair<std::string, bool>> from_container(std::string v) {
  if (v.rfind("container:", 0) != 0) return std::nullopt;
  v = v.substr(10);
  bool ro = false;
  if (auto colon = v.rfind(':'); colon != std::string::npos &&
                                 (v.substr(colon) == ":ro" || v.substr(colon) == ":rw")) {
    ro = v.substr(colon) == ":ro";
    v.resize(colon);
  }
  return std::make_pair(v, ro);
}
}  // namespace

Result<void> check_volumes_from_containers(const spec::Stack& stack, state::Store& store) {
  for (const auto& svc : stack.services) {
    auto it = svc.extra.find("volumes_from");
    if (it == svc.extra.end() || !it->is_array()) continue;
    for (const auto& v : *it) {
      auto c = v.is_string() ? from_container(v.get<std::string>()) : std::nullopt;
      if (!c) continue;
      auto rec = store.get_container(c->first);
      if (!rec) return fail(rec.error());
      if (!*rec)
        return fail(where(svc, svc.pos) + ": volumes_from container:" + c->first +
                    ": no container " + c->first + " on this host");
    }
  }
  return {};
}

Result<void> container_volumes_from(const Paths& paths, const spec::Service& svc,
                                    state::Store& store, RuntimeRecord& r) {
  auto it = svc.extra.find("volumes_from");
  if (it == svc.extra.end() || !it->is_array()) return {};
  std::vector<model::BindMount> taken;
  for (const auto& v : *it) {
    auto c = v.is_string() ? from_container(v.get<std::string>()) : std::nullopt;
    if (!c) continue;
    auto rec = store.get_container(c->first);
    if (!rec) return fail(rec.error());
    if (!*rec || !(*rec)->runtime)
      return fail(where(svc, svc.pos) + ": volumes_from container:" + c->first +
                  ": no container " + c->first + " on this host");
    // Its volumes and binds, as docker's --volumes-from takes them: not its tmpfs, its secrets
    // (another container's, under the run root) or the host's /dev/shm of an ipc: host.
    for (model::BindMount m : (*rec)->runtime->spec.mounts) {
      bool secret = m.source.string().rfind((paths.run_root / "secrets").string() + "/", 0) == 0;
      if (m.kind != model::BindMount::Kind::kBind || secret || m.target == "/dev/shm") continue;
      m.read_only = m.read_only || c->second;
      m.seed = false;  // it holds the other container's data already
      taken.push_back(std::move(m));
    }
  }
  // First: the service's own mounts may cover a target of the other's.
  r.spec.mounts.insert(r.spec.mounts.begin(), taken.begin(), taken.end());
  return {};
}

Result<void> shift_volume_owners(const Paths& paths, const RuntimeRecord& r) {
  if (!r.spec.userns) return {};
  auto under = [](const std::filesystem::path& p, const std::filesystem::path& dir) {
    return p.string().rfind(dir.string() + "/", 0) == 0;
  };
  for (const auto& m : r.spec.mounts) {
    if (m.kind != model::BindMount::Kind::kBind) continue;
    if (!under(m.source, paths.root / "volumes") && !under(m.source, r.spec.dir / "volumes"))
      continue;
    // O_NOFOLLOW|O_DIRECTORY: the volume's own directory, never where a symlink points.
    int fd = ::open(m.source.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail_errno("volume " + m.source.string());
    struct stat st {};
    bool fresh = ::fstat(fd, &st) == 0 && st.st_uid == 0 && st.st_gid == 0 &&
                 std::filesystem::is_empty(m.source);
    int rc = fresh ? ::fchown(fd, r.spec.userns->uid_base, r.spec.userns->gid_base) : 0;
    int saved = errno;
    ::close(fd);
    if (rc != 0) return fail_errno("volume " + m.source.string() + ": give it to the mapped root", saved);
  }
  return {};
}

namespace {
std::filesystem::path kept_volumes(const Paths& paths, const std::string& name) {
  return paths.root / "containers" / (name + ".kept-volumes");
}
}  // namespace

Result<void> keep_anonymous_volumes(const Paths& paths, const std::string& name) {
  auto from = paths.root / "containers" / name / "volumes";
  if (::access(from.c_str(), F_OK) != 0) return {};
  auto to = kept_volumes(paths, name);
  drop_kept_volumes(paths, name);
  // rename(2): the same filesystem, the data never copied.
  if (::rename(from.c_str(), to.c_str()) != 0)
    return fail_errno("keep the anonymous volumes of " + name + ": rename " + from.string());
  return {};
}

Result<void> adopt_anonymous_volumes(const Paths& paths, const RuntimeRecord& r) {
  auto kept = kept_volumes(paths, r.spec.name);
  if (::access(kept.c_str(), F_OK) != 0) return {};
  auto to = r.spec.dir / "volumes";
  if (::access(to.c_str(), F_OK) == 0) {  // it has its own already: the kept ones go
    drop_kept_volumes(paths, r.spec.name);
    return {};
  }
  if (auto d = make_dirs(r.spec.dir); !d) return d;
  if (::rename(kept.c_str(), to.c_str()) != 0)
    return fail_errno("take the anonymous volumes of the replaced " + r.spec.name);
  return {};
}

void drop_kept_volumes(const Paths& paths, const std::string& name) {
  auto kept = kept_volumes(paths, name);
  if (::access(kept.c_str(), F_OK) == 0) (void)remove_tree(kept);
}

}  // namespace stack::reconciler
