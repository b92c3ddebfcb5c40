// More service fields with structure: healthcheck, depends_on, ulimits, devices, capabilities,
// secrets and configs, build. Pure.
#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "spec/field.h"
#include "spec/service.h"
#include "spec/shape.h"

namespace stack::spec {
namespace {

std::optional<int> parse_mode(const std::string& text) {
  std::string t = text.rfind("0o", 0) == 0 ? text.substr(2) : text;
  char* end = nullptr;
  long v = std::strtol(t.c_str(), &end, 8);
  if (t.empty() || *end != '\0' || v < 0 || v > 07777) return std::nullopt;
  return static_cast<int>(v);
}

void add_file_refs(const FieldCtx& ctx, const Node& n, const std::string& default_dir,
                   std::vector<FileRef>& out) {
  if (n.is_null()) return;
  if (!n.is_sequence()) return ctx.type_error(n, "a list of names or mappings");
  using namespace shapes;
  static const Shape shape = object(
      {{"source", str()}, {"target", str()}, {"uid", str()}, {"gid", str()}, {"mode", scalar()}},
      {"source"});
  for (const Node& item : n.items) {
    FileRef ref;
    ref.pos = item.pos;
    if (item.is_scalar()) {
      ref.source = item.value;
    } else {
      nlohmann::json j = shape_json(ctx, item, shape);
      if (!j.is_object() || !j.contains("source")) continue;
      ref.source = j["source"];
      ref.target = j.value("target", "");
      ref.uid = j.value("uid", "");
      ref.gid = j.value("gid", "");
      if (j.contains("mode")) {
        const auto& m = j["mode"];
        ref.mode = parse_mode(m.is_string() ? m.get<std::string>() : m.dump());
        if (!ref.mode) ctx.type_error(*item.find("mode"), "octal permissions like 0440");
      }
    }
    if (ref.target.empty())
      ref.target = default_dir + ref.source;
    else if (ref.target[0] != '/')
      ref.target = default_dir + ref.target;
    out.push_back(std::move(ref));
  }
}

std::optional<int64_t> ulimit_value(const FieldCtx& ctx, const Node& n) {
  if (n.is_scalar() && (n.value == "unlimited" || n.value == "-1")) return -1;
  return ctx.integer(n, 0);
}

}  // namespace

void normalize_healthcheck(const FieldCtx& ctx, const Node& n, Service& s) {
  if (n.is_null()) return;
  if (!n.is_mapping()) return ctx.type_error(n, "a mapping with test, interval, ...");
  ctx.check_keys(n, {"test", "interval", "timeout", "retries", "start_period", "start_interval",
                     "disable"},
                 {});
  Healthcheck h;
  h.pos = n.pos;
  if (const Node* t = n.find("test")) {
    FieldCtx tc = ctx.child("test");
    if (t->is_scalar()) {
      h.test = t->value.empty() || t->value == "NONE"
                   ? std::vector<std::string>{"NONE"}
                   : std::vector<std::string>{"CMD-SHELL", t->value};
    } else if (auto words = tc.words(*t)) {
      if (words->empty() ||
          ((*words)[0] != "CMD" && (*words)[0] != "CMD-SHELL" && (*words)[0] != "NONE"))
        tc.error(t->pos, "a test list starts with CMD, CMD-SHELL or NONE");
      else if ((*words)[0] != "NONE" && words->size() < 2)
        tc.error(t->pos, (*words)[0] + " needs a command");
      else
        h.test = (*words)[0] == "NONE" ? std::vector<std::string>{"NONE"} : *words;
    }
  }
  auto dur = [&](const char* key, std::chrono::milliseconds& into) {
    if (const Node* v = n.find(key))
      if (auto d = ctx.child(key).duration(*v)) into = *d;
  };
  dur("interval", h.interval);
  dur("timeout", h.timeout);
  dur("start_period", h.start_period);
  dur("start_interval", h.start_interval);
  if (const Node* r = n.find("retries"))
    if (auto v = ctx.child("retries").integer(*r, 0)) h.retries = static_cast<int>(*v);
  if (const Node* d = n.find("disable"))
    if (auto v = ctx.child("disable").boolean(*d)) h.disable = *v;
  if (h.disable) h.test = {"NONE"};
  if (h.test == std::vector<std::string>{"NONE"}) h.disable = true;
  s.healthcheck = std::move(h);
}

void normalize_depends_on(const FieldCtx& ctx, const Node& n, Service& s) {
  s.depends_on.clear();
  s.dependencies.clear();
  auto add = [&](Dependency d) {
    if (std::find(s.depends_on.begin(), s.depends_on.end(), d.service) != s.depends_on.end())
      return;
    s.depends_on.push_back(d.service);
    s.dependencies.push_back(std::move(d));
  };
  if (n.is_null()) return;
  if (n.is_sequence()) {
    for (const Node& item : n.items)
      if (auto name = ctx.string(item)) add(Dependency{*name, "service_started", true, false, item.pos});
    return;
  }
  if (!n.is_mapping()) return ctx.type_error(n, "a list of service names or a mapping");
  using namespace shapes;
  static const Shape shape = object({{"condition", str({"service_started", "service_healthy",
                                                        "service_completed_successfully"})},
                                     {"required", boolean()},
                                     {"restart", boolean()}});
  for (const Entry& e : n.entries) {
    Dependency d{e.key, "service_started", true, false, e.key_pos};
    nlohmann::json j = shape_json(ctx.child(e.key), e.value, shape);
    if (j.is_object()) {
      d.condition = j.value("condition", d.condition);
      d.required = j.value("required", true);
      d.restart = j.value("restart", false);
    }
    add(std::move(d));
  }
}

void normalize_ulimits(const FieldCtx& ctx, const Node& n, Service& s) {
  if (n.is_null()) return;
  if (!n.is_mapping()) return ctx.type_error(n, "a mapping like {nofile: 65536}");
  for (const Entry& e : n.entries) {
    FieldCtx u = ctx.child(e.key);
    if (e.key.empty() || !std::all_of(e.key.begin(), e.key.end(), ::islower)) {
      ctx.error(e.key_pos, "invalid ulimit name \"" + e.key + "\"");
      continue;
    }
    if (e.value.is_mapping()) {
      u.check_keys(e.value, {"soft", "hard"}, {});
      const Node* soft = e.value.find("soft");
      const Node* hard = e.value.find("hard");
      if (soft == nullptr || hard == nullptr) {
        u.error(e.value.pos, "needs both soft and hard");
        continue;
      }
      auto sv = ulimit_value(u.child("soft"), *soft);
      auto hv = ulimit_value(u.child("hard"), *hard);
      if (!sv || !hv) continue;
      if (*hv != -1 && (*sv == -1 || *sv > *hv)) {
        u.error(e.value.pos, "soft limit is above the hard limit");
        continue;
      }
      s.ulimits[e.key] = Ulimit{*sv, *hv};
    } else if (auto v = ulimit_value(u, e.value)) {
      s.ulimits[e.key] = Ulimit{*v, *v};
    }
  }
}

void normalize_devices(const FieldCtx& ctx, const Node& n, Service& s) {
  if (n.is_null()) return;
  if (!n.is_sequence()) return ctx.type_error(n, "a list of devices");
  using namespace shapes;
  static const Shape shape =
      object({{"source", str()}, {"target", str()}, {"permissions", str()}}, {"source"});
  for (const Node& item : n.items) {
    Device d;
    if (item.is_scalar()) {
      std::string parts[3];
      size_t count = 0;
      size_t start = 0;
      for (; count < 3; ++count) {
        size_t colon = item.value.find(':', start);
        parts[count] = item.value.substr(start, colon - start);
        if (colon == std::string::npos) break;
        start = colon + 1;
      }
      if (count == 3 || parts[0].empty()) {
        ctx.type_error(item, "a device like /dev/ttyUSB0[:/dev/ttyUSB0[:rwm]]");
        continue;
      }
      d.source = parts[0];
      if (count == 2) {
        d.target = parts[1];
        d.permissions = parts[2];
      } else if (count == 1) {
        // "/dev/a:rw" is source and permissions; "/dev/a:/dev/b" source and target.
        if (parts[1].find('/') == std::string::npos)
          d.permissions = parts[1];
        else
          d.target = parts[1];
      }
    } else {
      nlohmann::json j = shape_json(ctx, item, shape);
      if (!j.is_object() || !j.contains("source")) continue;
      d.source = j["source"];
      d.target = j.value("target", "");
      d.permissions = j.value("permissions", "rwm");
    }
    if (d.target.empty()) d.target = d.source;
    if (d.permissions.empty() || d.permissions.find_first_not_of("rwm") != std::string::npos) {
      ctx.type_error(item, "device permissions made of r, w and m");
      continue;
    }
    s.devices.push_back(std::move(d));
  }
}

void normalize_capabilities(const FieldCtx& ctx, const Node& n, std::vector<std::string>& out) {
  if (n.is_null()) return;
  if (!n.is_sequence()) return ctx.type_error(n, "a list of capabilities like NET_ADMIN");
  for (const Node& item : n.items) {
    auto v = ctx.string(item);
    if (!v) continue;
    std::string cap = *v;
    for (char& c : cap) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (cap != "ALL" && cap.rfind("CAP_", 0) != 0) cap = "CAP_" + cap;
    if (cap.size() < 5 && cap != "ALL") {
      ctx.type_error(item, "a capability like NET_ADMIN");
      continue;
    }
    out.push_back(cap);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

void normalize_secrets(const FieldCtx& ctx, const Node& n, Service& s) {
  add_file_refs(ctx, n, "/run/secrets/", s.secrets);
}

void normalize_configs(const FieldCtx& ctx, const Node& n, Service& s) {
  add_file_refs(ctx, n, "/", s.configs);
}

void normalize_build(const FieldCtx& ctx, const Node& n, Service& s) {
  if (n.is_null()) return;
  Build b;
  b.pos = n.pos;
  auto set_context = [&](const Node& at, const std::string& context) {
    bool remote = context.find("://") != std::string::npos || context.rfind("git@", 0) == 0 ||
                  context.rfind("github.com/", 0) == 0;
    b.context = remote ? context : ctx.resolve(at.pos, context).string();
  };
  if (n.is_scalar()) {
    set_context(n, n.value);
    s.build = std::move(b);
    return;
  }
  nlohmann::json j = shape_json(ctx, n, build_shape());
  if (!j.is_object()) return;
  const Node* context = n.find("context");
  set_context(context != nullptr ? *context : n, j.value("context", "."));
  b.dockerfile = j.value("dockerfile", "Dockerfile");
  b.dockerfile_inline = j.value("dockerfile_inline", "");
  if (j.contains("dockerfile") && j.contains("dockerfile_inline"))
    ctx.error(n.find("dockerfile_inline")->pos, "dockerfile and dockerfile_inline exclude each other");
  b.target = j.value("target", "");
  for (const char* key : {"args", "labels"}) {
    if (!j.contains(key)) continue;
    for (auto& [k, v] : j[key].items()) {
      // A bare ARG takes its value from the environment, as compose does (and is left out,
      // so the Dockerfile's default holds, when the environment has none).
      std::optional<std::string> value =
          v.is_null() ? (std::string(key) == "args" ? ctx.lookup(k) : std::string())
                      : std::optional<std::string>(v.is_string() ? v.get<std::string>() : v.dump());
      if (value) (std::string(key) == "args" ? b.args : b.labels)[k] = *value;
    }
  }
  b.network = j.value("network", "");
  b.no_cache = j.value("no_cache", false);
  b.pull = j.value("pull", false);
  if (j.contains("tags"))
    for (const auto& t : j["tags"])
      if (t.is_string()) b.tags.push_back(default_image_tag(t.get<std::string>()));
  if (j.contains("shm_size") && j["shm_size"].is_number_integer())
    b.shm_size = j["shm_size"].get<int64_t>();
  if (const Node* hosts = n.find("extra_hosts")) {
    Service scratch;  // the service's own parser, for the same forms and messages
    normalize_extra_hosts(ctx.child("extra_hosts"), *hosts, scratch);
    b.extra_hosts = std::move(scratch.extra_hosts);
  }
  for (const char* key : {"cache_from", "cache_to"})
    if (const Node* at = n.find(key))
      ctx.diag.warn(at->pos, ctx.path + "." + key +
                                 " is ignored: builds use the local layer cache, nothing is exported");
  for (const char* key : {"context", "dockerfile", "dockerfile_inline", "target", "args", "labels",
                          "network", "no_cache", "pull", "tags", "shm_size", "extra_hosts"})
    j.erase(key);
  b.extra = std::move(j);
  s.build = std::move(b);
}

}  // namespace stack::spec
