// The service fields with structure of their own: environment and env_file, volumes, logging,
// deploy. Reads env files; nothing else touches the host.
#include <algorithm>

#include "common/files.h"
#include "spec/env_file.h"
#include "spec/field.h"
#include "spec/loader.h"
#include "spec/shape.h"

namespace stack::spec {
namespace {

void set_env(const FieldCtx& ctx, const SourcePos& pos, const std::string& key,
             std::optional<std::string> value, Service& s) {
  if (key.empty() || key.find_first_of(" \t") != std::string::npos) {
    ctx.error(pos, "invalid variable name \"" + key + "\"");
    return;
  }
  // A bare KEY takes its value from the environment stack runs in, or is left out.
  if (!value) value = ctx.lookup(key);
  if (value && value->find('\0') != std::string::npos) {
    ctx.error(pos, "the value of " + key + " contains a NUL byte, which is not allowed");
    return;
  }
  if (value)
    s.environment[key] = *value;
  else
    s.environment.erase(key);
}

// env_file `format: raw`: KEY=VALUE lines taken literally (no quotes, no escapes, no
// interpolation); blank lines and lines starting with # are skipped.
Result<std::vector<EnvLine>> parse_raw_env_file(std::string_view text) {
  std::vector<EnvLine> out;
  int number = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\0') != std::string_view::npos)
      return fail("line " + std::to_string(number) + ": a NUL byte");
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    EnvLine e;
    e.key = std::string(line.substr(0, eq));
    e.line = number;
    if (eq != std::string_view::npos) e.value = std::string(line.substr(eq + 1));
    if (e.key.empty()) return fail("line " + std::to_string(number) + ": no variable name");
    out.push_back(std::move(e));
  }
  return out;
}

void add_env_file(const FieldCtx& ctx, const Node& path_node, bool required, Service& s,
                  bool raw = false) {
  auto path = ctx.string(path_node);
  if (!path) return;
  auto full = ctx.resolve(path_node.pos, *path);
  auto text = read_file(full, kMaxEnvFileBytes, "env files");
  if (!text) {
    if (required || text.error().sys_errno != ENOENT)
      s.env_file_errors.emplace_back(path_node.pos, ctx.path + ": " + text.error().message);
    return;
  }
  auto lines = raw ? parse_raw_env_file(*text) : parse_env_file(*text);
  if (!lines) {
    s.env_file_errors.emplace_back(path_node.pos,
                                   ctx.path + ": " + *path + ": " + lines.error().message);
    return;
  }
  for (const EnvLine& line : *lines) set_env(ctx, path_node.pos, line.key, line.value, s);
}

bool is_path(const std::string& source) {
  return !source.empty() && (source[0] == '/' || source[0] == '.' || source[0] == '~');
}

bool valid_target(const FieldCtx& ctx, const Node& n, const std::string& target) {
  if (!target.empty() && target[0] == '/') return true;
  ctx.error(n.pos, "volume target must be an absolute path, got \"" + target + "\"");
  return false;
}

void apply_volume_option(const FieldCtx& ctx, const Node& n, const std::string& option, Mount& m) {
  static const std::vector<std::string> propagation = {"shared", "slave",  "private",
                                                       "rshared", "rslave", "rprivate"};
  if (option == "ro" || option == "rw")
    m.read_only = option == "ro";
  else if (option == "z" || option == "Z")
    m.selinux = option;
  else if (option == "nocopy")
    m.nocopy = true;
  else if (option == "cached" || option == "delegated" || option == "consistent")
    m.consistency = option;
  else if (std::find(propagation.begin(), propagation.end(), option) != propagation.end())
    m.propagation = option;
  else
    ctx.error(n.pos, "unknown volume option \"" + option +
                         "\" (use ro, rw, z, Z, nocopy or a propagation like rshared)");
}

void add_mount_from_string(const FieldCtx& ctx, const Node& n, Service& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t colon; (colon = n.value.find(':', start)) != std::string::npos; start = colon + 1)
    parts.push_back(n.value.substr(start, colon - start));
  parts.push_back(n.value.substr(start));
  if (parts.size() > 3) {
    ctx.type_error(n, "a volume like ./data:/data[:ro]");
    return;
  }
  Mount m;
  m.pos = n.pos;
  if (parts.size() == 1) {  // an anonymous volume
    m.type = "volume";
    m.target = parts[0];
  } else {
    m.target = parts[1];
    if (is_path(parts[0])) {
      m.source = ctx.resolve(n.pos, parts[0]);
    } else {
      m.type = "volume";
      m.source = parts[0];
    }
  }
  if (!valid_target(ctx, n, m.target)) return;
  if (parts.size() == 3) {
    std::string options = parts[2];
    size_t from = 0;
    for (size_t comma; from <= options.size(); from = comma + 1) {
      comma = options.find(',', from);
      if (comma == std::string::npos) comma = options.size();
      apply_volume_option(ctx, n, options.substr(from, comma - from), m);
    }
  }
  s.volumes.push_back(std::move(m));
}

void add_mount_from_mapping(const FieldCtx& ctx, const Node& n, Service& s) {
  ctx.check_keys(n, {"type", "source", "target", "read_only", "consistency", "bind", "volume",
                     "tmpfs", "image"},
                 {});
  Mount m;
  m.pos = n.pos;
  m.create_host_path = false;
  const Node* type = n.find("type");
  if (type == nullptr) {
    ctx.error(n.pos, "type is required (bind, volume or tmpfs)");
    return;
  }
  auto t = ctx.child("type").string(*type);
  static const std::vector<std::string> types = {"bind",  "volume", "tmpfs",
                                                 "image", "npipe",  "cluster"};
  if (!t) return;
  if (std::find(types.begin(), types.end(), *t) == types.end()) {
    ctx.child("type").type_error(*type, "bind, volume, tmpfs, image, npipe or cluster");
    return;
  }
  m.type = *t;
  const Node* source = n.find("source");
  const Node* target = n.find("target");
  if (target == nullptr) {
    ctx.error(n.pos, "target is required");
    return;
  }
  auto dst = ctx.child("target").string(*target);
  if (!dst) return;
  m.target = *dst;
  if (!valid_target(ctx.child("target"), *target, m.target)) return;
  if (source != nullptr) {
    auto src = ctx.child("source").string(*source);
    if (!src) return;
    if (m.type == "tmpfs") {
      ctx.error(source->pos, "a tmpfs mount has no source");
      return;
    }
    m.source = m.type == "bind" ? ctx.resolve(source->pos, *src) : std::filesystem::path(*src);
  } else if (m.type == "bind" || m.type == "image") {
    ctx.error(n.pos, "a " + m.type + " mount needs a source");
    return;
  }
  if (const Node* ro = n.find("read_only"))
    if (auto v = ctx.child("read_only").boolean(*ro)) m.read_only = *v;
  if (const Node* c = n.find("consistency"))
    if (auto v = ctx.child("consistency").string(*c)) m.consistency = *v;
  using namespace shapes;
  auto sub = [&](const char* key, const Shape& shape) {
    const Node* v = n.find(key);
    return v == nullptr ? nlohmann::json() : shape_json(ctx.child(key), *v, shape);
  };
  static const Shape bind = object({{"propagation", str()},
                                    {"create_host_path", boolean()},
                                    {"selinux", str({"z", "Z"})},
                                    {"recursive",
                                     str({"enabled", "disabled", "writable", "readonly"})}});
  static const Shape volume = object({{"nocopy", boolean()}, {"subpath", str()},
                                      {"labels", dict()}});
  static const Shape tmpfs = object({{"size", bytes()}, {"mode", scalar()}});
  static const Shape image = object({{"subpath", str()}});
  if (auto b = sub("bind", bind); b.is_object()) {
    m.propagation = b.value("propagation", "");
    m.create_host_path = b.value("create_host_path", false);
    m.selinux = b.value("selinux", "");
    // enabled (docker's default) and readonly both bind the mounts below the source too,
    // read-only with it; disabled binds the source's own mount only; writable leaves the
    // ones below writable under a read-only top (model::BindMount::Recursive).
    std::string recursive = b.value("recursive", "enabled");
    if (recursive == "readonly" && !m.read_only)
      ctx.child("bind.recursive").error(n.find("bind")->pos, "readonly needs read_only: true");
    if (recursive != "enabled") m.recursive = recursive;
  }
  if (auto v = sub("volume", volume); v.is_object()) {
    m.nocopy = v.value("nocopy", false);
    m.subpath = v.value("subpath", "");
    if (v.contains("labels"))
      for (const auto& [k, val] : v["labels"].items())
        m.volume_labels[k] = val.is_string() ? val.get<std::string>() : "";
  }
  if (auto i = sub("image", image); i.is_object()) m.subpath = i.value("subpath", "");
  if (auto t = sub("tmpfs", tmpfs); t.is_object()) {
    if (t.contains("size")) m.tmpfs_size = t["size"].get<int64_t>();
    if (t.contains("mode")) {
      std::string mode = t["mode"].is_string() ? t["mode"].get<std::string>() : t["mode"].dump();
      char* end = nullptr;
      long v = std::strtol(mode.c_str(), &end, 8);
      if (mode.empty() || *end != '\0' || v < 0 || v > 07777)
        ctx.child("tmpfs.mode").error(n.find("tmpfs")->pos, "expected octal permissions like 1777");
      else
        m.tmpfs_mode = static_cast<int>(v);
    }
  }
  s.volumes.push_back(std::move(m));
}

}  // namespace

void normalize_environment(const FieldCtx& ctx, const Node& n, Service& s) {
  if (n.is_mapping()) {
    for (const Entry& e : n.entries) {
      if (e.value.is_null()) {
        set_env(ctx, e.key_pos, e.key, std::nullopt, s);
      } else if (e.value.is_scalar()) {
        set_env(ctx, e.key_pos, e.key, e.value.value, s);
      } else {
        ctx.child(e.key).type_error(e.value, "a string");
      }
    }
  } else if (n.is_sequence()) {
    for (const Node& item : n.items) {
      auto text = ctx.string(item);
      if (!text) continue;
      size_t eq = text->find('=');
      if (eq == std::string::npos)
        set_env(ctx, item.pos, *text, std::nullopt, s);
      else
        set_env(ctx, item.pos, text->substr(0, eq), text->substr(eq + 1), s);
    }
  } else if (!n.is_null()) {
    ctx.type_error(n, "a mapping or a list of KEY=VALUE");
  }
}

void normalize_env_file(const FieldCtx& ctx, const Node& n, Service& s) {
  auto one = [&](const Node& item) {
    if (!item.is_mapping()) {
      add_env_file(ctx, item, true, s);
      return;
    }
    ctx.check_keys(item, {"path", "required", "format"}, {});
    const Node* path = item.find("path");
    if (path == nullptr) {
      ctx.error(item.pos, "env_file entry needs a path");
      return;
    }
    bool required = true;
    if (const Node* r = item.find("required"))
      required = ctx.child("required").boolean(*r).value_or(true);
    bool raw = false;
    if (const Node* f = item.find("format")) {
      auto v = ctx.child("format").string(*f);
      if (v && *v != "raw" && *v != "dotenv" && !v->empty()) {
        ctx.error(f->pos, "format must be raw or dotenv, got \"" + *v + "\"");
        return;
      }
      raw = v && *v == "raw";
    }
    add_env_file(ctx, *path, required, s, raw);
  };
  if (n.is_sequence())
    for (const Node& item : n.items) one(item);
  else if (!n.is_null())
    one(n);
}

void normalize_volumes(const FieldCtx& ctx, const Node& n, Service& s) {
  if (n.is_null()) return;
  if (!n.is_sequence()) {
    ctx.type_error(n, "a list of volumes");
    return;
  }
  for (const Node& item : n.items) {
    if (item.is_scalar())
      add_mount_from_string(ctx, item, s);
    else if (item.is_mapping())
      add_mount_from_mapping(ctx, item, s);
    else
      ctx.type_error(item, "a volume like ./data:/data or a mapping");
  }
  for (size_t i = 0; i < s.volumes.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (s.volumes[i].target == s.volumes[j].target)
        ctx.error(s.volumes[i].pos, "duplicate mount target " + s.volumes[i].target);
}

void normalize_logging(const FieldCtx& ctx, const Node& n, Service& s) {
  if (n.is_null()) return;
  if (!n.is_mapping()) {
    ctx.type_error(n, "a mapping with driver and options");
    return;
  }
  ctx.check_keys(n, {"driver", "options"}, {});
  if (const Node* d = n.find("driver"))
    if (auto driver = ctx.child("driver").string(*d)) s.logging.driver = *driver;
  const Node* options = n.find("options");
  if (options == nullptr || options->is_null()) return;
  FieldCtx opts = ctx.child("options");
  if (!options->is_mapping()) {
    opts.type_error(*options, "a mapping");
    return;
  }
  for (const Entry& e : options->entries) {
    if (e.key == "max-size") {
      if (auto b = opts.child(e.key).bytes(e.value)) {
        s.logging.max_size_bytes = *b;
        s.logging.max_size_set = true;
      }
    } else if (e.key == "max-file") {
      if (auto f = opts.child(e.key).integer(e.value, 1)) {
        s.logging.max_files = static_cast<int>(std::min<int64_t>(*f, 1000));
        s.logging.max_files_set = true;
      }
    } else if (e.value.is_scalar() || e.value.is_null()) {
      s.logging.options[e.key] = e.value.value;
    } else {
      opts.child(e.key).type_error(e.value, "a string");
    }
  }
}

void normalize_deploy(const FieldCtx& ctx, const Node& n, Service& s) {
  nlohmann::json d = shape_json(ctx, n, deploy_shape());
  if (!d.is_object()) return;
  if (d.contains("replicas"))
    s.replicas = static_cast<int>(std::clamp<int64_t>(d["replicas"].get<int64_t>(), 0, 1 << 20));
  d.erase("replicas");
  if (d.contains("resources") && d["resources"].contains("limits")) {
    nlohmann::json& limits = d["resources"]["limits"];
    if (limits.contains("memory")) s.limits.memory_bytes = limits["memory"].get<int64_t>();
    if (limits.contains("cpus")) s.limits.cpus = limits["cpus"].get<double>();
    if (limits.contains("pids")) s.limits.pids = limits["pids"].get<int64_t>();
    d["resources"].erase("limits");
    if (d["resources"].empty()) d.erase("resources");
  }
  if (!d.empty()) s.extra["deploy"] = std::move(d);
}

}  // namespace stack::spec
