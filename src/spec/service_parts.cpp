// The service fields with structure of their own: environment and env_file, volumes, logging,
// deploy. Reads env files from the project dir; nothing else touches the host.
#include <algorithm>

#include "common/files.h"
#include "spec/env_file.h"
#include "spec/field.h"

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
  if (value)
    s.environment[key] = *value;
  else
    s.environment.erase(key);
}

std::filesystem::path absolute_in_project(const FieldCtx& ctx, const std::string& path) {
  std::filesystem::path p = (ctx.project_dir / path).lexically_normal();
  if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
  return p;
}

void add_env_file(const FieldCtx& ctx, const Node& path_node, bool required, Service& s) {
  auto path = ctx.string(path_node);
  if (!path) return;
  auto full = absolute_in_project(ctx, *path);
  auto text = read_file(full);
  if (!text) {
    if (required || text.error().sys_errno != ENOENT)
      ctx.error(path_node.pos, text.error().message);
    return;
  }
  auto lines = parse_env_file(*text);
  if (!lines) {
    ctx.error(path_node.pos, *path + ": " + lines.error().message);
    return;
  }
  for (const EnvLine& line : *lines) set_env(ctx, path_node.pos, line.key, line.value, s);
}

void add_mount_from_string(const FieldCtx& ctx, const Node& n, Service& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t colon; (colon = n.value.find(':', start)) != std::string::npos; start = colon + 1)
    parts.push_back(n.value.substr(start, colon - start));
  parts.push_back(n.value.substr(start));
  if (parts.size() == 1) {
    ctx.unsupported(n.pos, "anonymous volume " + parts[0]);
    return;
  }
  if (parts.size() > 3) {
    ctx.type_error(n, "a volume like ./data:/data[:ro]");
    return;
  }
  Mount m;
  m.pos = n.pos;
  const std::string& source = parts[0];
  m.target = parts[1];
  if (parts.size() == 3) {
    std::string option;
    for (size_t i = 0; i <= parts[2].size(); ++i) {
      if (i < parts[2].size() && parts[2][i] != ',') {
        option += parts[2][i];
        continue;
      }
      if (option == "ro")
        m.read_only = true;
      else if (option == "rw")
        m.read_only = false;
      else if (option == "cached" || option == "delegated" || option == "consistent") {
        // macOS consistency hints; meaningless on Linux, accepted as compose does.
      } else {
        ctx.unsupported(n.pos, "volume option " + option);
        return;
      }
      option.clear();
    }
  }
  if (source.empty() || (source[0] != '/' && source[0] != '.')) {
    ctx.unsupported(n.pos, "named volume " + source);
    return;
  }
  m.source = absolute_in_project(ctx, source);
  if (m.target.empty() || m.target[0] != '/') {
    ctx.error(n.pos, "volume target must be an absolute path, got \"" + m.target + "\"");
    return;
  }
  s.volumes.push_back(std::move(m));
}

void add_mount_from_mapping(const FieldCtx& ctx, const Node& n, Service& s) {
  ctx.check_keys(n, {"type", "source", "target", "read_only"},
                 {"bind", "volume", "tmpfs", "image", "consistency"});
  Mount m;
  m.pos = n.pos;
  const Node* type = n.find("type");
  if (type == nullptr) {
    ctx.error(n.pos, "type is required (bind)");
    return;
  }
  auto t = ctx.child("type").string(*type);
  if (!t) return;
  const Node* source = n.find("source");
  const Node* target = n.find("target");
  if (*t == "volume") {
    auto name = source != nullptr && source->is_scalar() ? source->value : "";
    ctx.unsupported(n.pos, name.empty() ? "anonymous volume" : "named volume " + name);
    return;
  }
  if (*t != "bind") {
    ctx.unsupported(type->pos, "mount type " + *t);
    return;
  }
  if (source == nullptr || target == nullptr) {
    ctx.error(n.pos, "a bind mount needs source and target");
    return;
  }
  auto src = ctx.child("source").string(*source);
  auto dst = ctx.child("target").string(*target);
  if (!src || !dst) return;
  if (dst->empty() || (*dst)[0] != '/') {
    ctx.child("target").error(target->pos, "expected an absolute path, got \"" + *dst + "\"");
    return;
  }
  if (const Node* ro = n.find("read_only"))
    if (auto v = ctx.child("read_only").boolean(*ro)) m.read_only = *v;
  m.source = absolute_in_project(ctx, *src);
  m.target = *dst;
  s.volumes.push_back(std::move(m));
}

void normalize_limits(const FieldCtx& ctx, const Node& n, Service& s) {
  if (!n.is_mapping()) {
    ctx.type_error(n, "a mapping");
    return;
  }
  ctx.check_keys(n, {"cpus", "memory", "pids"}, {"devices"});
  if (const Node* v = n.find("memory"))
    if (auto b = ctx.child("memory").bytes(*v)) s.limits.memory_bytes = *b;
  if (const Node* v = n.find("cpus"))
    if (auto c = ctx.child("cpus").number(*v)) s.limits.cpus = *c;
  if (const Node* v = n.find("pids"))
    if (auto p = ctx.child("pids").integer(*v, -1)) s.limits.pids = *p;
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
    ctx.check_keys(item, {"path", "required"}, {"format"});
    const Node* path = item.find("path");
    if (path == nullptr) {
      ctx.error(item.pos, "env_file entry needs a path");
      return;
    }
    bool required = true;
    if (const Node* r = item.find("required"))
      required = ctx.child("required").boolean(*r).value_or(true);
    add_env_file(ctx, *path, required, s);
  };
  if (n.is_sequence())
    for (const Node& item : n.items) one(item);
  else if (!n.is_null())
    one(n);
}

void normalize_volumes(const FieldCtx& ctx, const Node& n, Service& s) {
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
}

void normalize_logging(const FieldCtx& ctx, const Node& n, Service& s) {
  if (!n.is_mapping()) {
    ctx.type_error(n, "a mapping with driver and options");
    return;
  }
  ctx.check_keys(n, {"driver", "options"}, {});
  if (const Node* d = n.find("driver")) {
    auto driver = ctx.child("driver").string(*d);
    if (driver && *driver != "json-file" && *driver != "local")
      ctx.unsupported(d->pos, "logging driver " + *driver);
    else if (driver)
      s.logging.driver = *driver;
  }
  const Node* options = n.find("options");
  if (options == nullptr || options->is_null()) return;
  FieldCtx opts = ctx.child("options");
  if (!options->is_mapping()) {
    opts.type_error(*options, "a mapping");
    return;
  }
  for (const Entry& e : options->entries) {
    if (e.key == "max-size") {
      if (auto b = opts.child(e.key).bytes(e.value)) s.logging.max_size_bytes = *b;
    } else if (e.key == "max-file") {
      if (auto f = opts.child(e.key).integer(e.value, 1))
        s.logging.max_files = static_cast<int>(std::min<int64_t>(*f, 1000));
    } else {
      ctx.unsupported(e.key_pos, opts.path + "." + e.key);
    }
  }
}

void normalize_deploy(const FieldCtx& ctx, const Node& n, Service& s) {
  if (!n.is_mapping()) {
    ctx.type_error(n, "a mapping");
    return;
  }
  ctx.check_keys(n, {"replicas", "resources"},
                 {"endpoint_mode", "labels", "mode", "placement", "restart_policy",
                  "rollback_config", "update_config"});
  if (const Node* r = n.find("replicas"))
    if (auto v = ctx.child("replicas").integer(*r, 0))
      s.replicas = static_cast<int>(std::min<int64_t>(*v, 1 << 20));
  const Node* resources = n.find("resources");
  if (resources == nullptr) return;
  FieldCtx rctx = ctx.child("resources");
  if (!resources->is_mapping()) {
    rctx.type_error(*resources, "a mapping");
    return;
  }
  rctx.check_keys(*resources, {"limits"}, {"reservations"});
  if (const Node* limits = resources->find("limits"))
    normalize_limits(rctx.child("limits"), *limits, s);
}

}  // namespace stack::spec
