// Service normalisation: a table of the Compose service keys with a typed field, each with
// its normaliser; every other Compose key is validated and kept by its shape (generic.cpp).
// Adding a typed field: write a normaliser, add it to fields(), drop its shape.
#include "spec/service.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

#include "spec/loader.h"
#include "spec/shape.h"

namespace stack::spec {
namespace {

using Normaliser = std::function<void(const FieldCtx&, const Node&, Service&)>;

const std::vector<std::string> kSignals = {
    "HUP",  "INT",  "QUIT", "ILL",    "TRAP",   "ABRT",  "BUS",  "FPE",  "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM",   "STKFLT", "CHLD",  "CONT", "STOP", "TSTP", "TTIN", "TTOU",
    "URG",  "XCPU", "XFSZ", "VTALRM", "PROF",   "WINCH", "IO",   "POLL", "PWR",  "SYS"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

Normaliser text(std::string Service::*field) {
  return [field](const FieldCtx& c, const Node& n, Service& s) {
    if (n.is_null()) return;
    if (auto v = c.string(n)) s.*field = *v;
  };
}

Normaliser bounded_text(std::string Service::*field, std::string what, size_t max,
                        std::string why) {
  return [=](const FieldCtx& c, const Node& n, Service& s) {
    if (n.is_null()) return;
    if (auto v = c.string(n); v && c.check_length(n.pos, c.path + ": " + what, *v, max, why))
      s.*field = *v;
  };
}

Normaliser flag(bool Service::*field) {
  return [field](const FieldCtx& c, const Node& n, Service& s) {
    if (n.is_null()) return;
    if (auto v = c.boolean(n)) s.*field = *v;
  };
}

Normaliser texts(std::vector<std::string> Service::*field) {
  return [field](const FieldCtx& c, const Node& n, Service& s) {
    for (std::string& v : string_list(c, n))
      if (std::find((s.*field).begin(), (s.*field).end(), v) == (s.*field).end())
        (s.*field).push_back(std::move(v));
  };
}

Normaliser dict(std::map<std::string, std::string> Service::*field) {
  return [field](const FieldCtx& c, const Node& n, Service& s) { s.*field = string_dict(c, n); };
}

void normalize_image(const FieldCtx& ctx, const Node& n, Service& s) {
  auto v = ctx.string(n);
  if (!v) return;
  s.image_pos = n.pos;
  if (v->empty() || v->find_first_of(" \t") != std::string::npos) {
    ctx.error(n.pos, "expected an image reference like busybox:1.36, got \"" + *v + "\"");
    return;
  }
  s.image = default_image_tag(*v);
}

void normalize_stop_signal(const FieldCtx& ctx, const Node& n, Service& s) {
  auto v = ctx.string(n);
  if (!v) return;
  std::string sig = *v;
  for (char& c : sig) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!sig.empty() && std::all_of(sig.begin(), sig.end(), is_digit)) {
    int number = std::stoi(sig.substr(0, 3));
    if (number >= 1 && number <= 64) {
      s.stop_signal = sig;
      return;
    }
  }
  if (sig.rfind("SIG", 0) == 0) sig.erase(0, 3);
  bool realtime = sig.rfind("RTMIN", 0) == 0 || sig.rfind("RTMAX", 0) == 0;
  if (!realtime && std::find(kSignals.begin(), kSignals.end(), sig) == kSignals.end()) {
    ctx.type_error(n, "a signal like SIGTERM");
    return;
  }
  s.stop_signal = "SIG" + sig;
}

void normalize_restart(const FieldCtx& ctx, const Node& n, Service& s) {
  auto v = ctx.string(n);
  if (!v) return;
  // YAML 1.1 reads a bare `no` as a boolean; the parser hands us the text, "no" or "false".
  std::string policy = *v == "false" ? "no" : *v;
  bool ok =
      policy == "no" || policy == "always" || policy == "unless-stopped" || policy == "on-failure";
  if (policy.rfind("on-failure:", 0) == 0) {
    std::string count = policy.substr(11);
    ok = !count.empty() && count.size() < 10 && std::all_of(count.begin(), count.end(), is_digit);
  }
  if (!ok) {
    ctx.type_error(n, "no, always, on-failure[:N] or unless-stopped");
    return;
  }
  s.restart = policy;
}

void normalize_pull_policy(const FieldCtx& ctx, const Node& n, Service& s) {
  auto v = ctx.string(n);
  if (!v) return;
  std::string p = *v == "if_not_present" ? "missing" : *v;
  bool every = p.rfind("every_", 0) == 0 && parse_duration(p.substr(6)).has_value();
  static const std::vector<std::string> known = {"always", "never",  "missing", "build",
                                                 "refresh", "daily", "weekly"};
  if (!every && std::find(known.begin(), known.end(), p) == known.end()) {
    ctx.type_error(n, "always, never, missing, build, daily, weekly or every_<duration>");
    return;
  }
  s.pull_policy = p;
}

void normalize_replicas(const FieldCtx& ctx, const Node& n, Service& s) {
  if (auto v = ctx.integer(n, 0)) s.replicas = static_cast<int>(std::min<int64_t>(*v, 1 << 20));
}

void normalize_network_mode(const FieldCtx& ctx, const Node& n, Service& s) {
  auto v = ctx.string(n);
  if (!v) return;
  bool ok = *v == "host" || *v == "none" || *v == "bridge" || *v == "default" ||
            ((v->rfind("service:", 0) == 0 || v->rfind("container:", 0) == 0) &&
             v->back() != ':');
  if (!ok) {
    ctx.type_error(n, "host, none, bridge, service:NAME or container:NAME");
    return;
  }
  s.network_mode = *v;
}

void normalize_tmpfs(const FieldCtx& ctx, const Node& n, Service& s) {
  for (std::string& v : string_list(ctx, n)) {
    if (v.empty() || v[0] != '/') {
      ctx.type_error(n, "an absolute path like /run[:size=64m]");
      continue;
    }
    if (std::find(s.tmpfs.begin(), s.tmpfs.end(), v) == s.tmpfs.end()) s.tmpfs.push_back(v);
  }
}

void normalize_x_stack(const FieldCtx& ctx, const Node& n, Service& s) {
  if (!n.is_mapping() && !n.is_null()) {
    ctx.type_error(n, "a mapping");
    return;
  }
  s.x_stack = shape_json(ctx, n, shapes::any());
}

const std::map<std::string, Normaliser>& fields() {
  static const std::map<std::string, Normaliser> table = {
      {"image", normalize_image},
      {"build", normalize_build},
      {"pull_policy", normalize_pull_policy},
      {"command",
       [](const FieldCtx& c, const Node& n, Service& s) {
         if (n.is_null()) return;
         if (auto w = c.words(n)) s.command = *w;
       }},
      {"entrypoint",
       [](const FieldCtx& c, const Node& n, Service& s) {
         if (n.is_null()) return;
         if (auto w = c.words(n)) s.entrypoint = *w;
       }},
      {"environment", normalize_environment},
      {"env_file", normalize_env_file},
      {"working_dir", text(&Service::working_dir)},
      {"hostname", bounded_text(&Service::hostname, "hostname", kMaxHostname,
                                "sethostname(2), and a DNS label")},
      {"domainname", bounded_text(&Service::domainname, "domainname", kMaxDomainname,
                                  "setdomainname(2)")},
      {"container_name", bounded_text(&Service::container_name, "container name",
                                      kMaxObjectName, "a directory and a cgroup are named so")},
      {"user", text(&Service::user)},
      {"mem_limit",
       [](const FieldCtx& c, const Node& n, Service& s) {
         if (auto v = c.bytes(n)) s.limits.memory_bytes = *v;
       }},
      {"cpus",
       [](const FieldCtx& c, const Node& n, Service& s) {
         if (auto v = c.number(n)) s.limits.cpus = *v;
       }},
      {"cpu_shares",
       [](const FieldCtx& c, const Node& n, Service& s) {
         if (auto v = c.integer(n, 0)) s.limits.cpu_shares = *v;
       }},
      {"pids_limit",
       [](const FieldCtx& c, const Node& n, Service& s) {
         if (auto v = c.integer(n, -1)) s.limits.pids = *v;
       }},
      {"deploy", normalize_deploy},
      {"scale", normalize_replicas},
      {"stop_signal", normalize_stop_signal},
      {"stop_grace_period",
       [](const FieldCtx& c, const Node& n, Service& s) {
         if (auto v = c.duration(n)) s.stop_grace_period = *v;
       }},
      {"volumes", normalize_volumes},
      {"tmpfs", normalize_tmpfs},
      {"logging", normalize_logging},
      {"depends_on", normalize_depends_on},
      {"restart", normalize_restart},
      {"healthcheck", normalize_healthcheck},
      {"ports", normalize_ports},
      {"expose", normalize_expose},
      {"networks", normalize_service_networks},
      {"network_mode", normalize_network_mode},
      {"extra_hosts", normalize_extra_hosts},
      {"dns", texts(&Service::dns)},
      {"dns_search", texts(&Service::dns_search)},
      {"dns_opt", texts(&Service::dns_opt)},
      {"links", texts(&Service::links)},
      {"labels", dict(&Service::labels)},
      {"sysctls", dict(&Service::sysctls)},
      {"ulimits", normalize_ulimits},
      {"cap_add",
       [](const FieldCtx& c, const Node& n, Service& s) { normalize_capabilities(c, n, s.cap_add); }},
      {"cap_drop",
       [](const FieldCtx& c, const Node& n,
          Service& s) { normalize_capabilities(c, n, s.cap_drop); }},
      {"privileged", flag(&Service::privileged)},
      {"read_only", flag(&Service::read_only)},
      {"init",
       [](const FieldCtx& c, const Node& n, Service& s) {
         if (n.is_null()) return;
         if (auto v = c.boolean(n)) s.init = *v;
       }},
      {"tty", flag(&Service::tty)},
      {"stdin_open", flag(&Service::stdin_open)},
      {"devices", normalize_devices},
      {"profiles", texts(&Service::profiles)},
      {"secrets", normalize_secrets},
      {"configs", normalize_configs},
      {"x-stack", normalize_x_stack},
      // Resolved by the loader before normalisation; only its presence is left.
      {"extends", [](const FieldCtx&, const Node&, Service&) {}},
  };
  return table;
}

std::vector<std::string> known_keys() {
  std::vector<std::string> keys;
  for (const auto& [key, _] : fields())
    if (key != "x-stack") keys.push_back(key);
  for (const auto& [key, _] : generic_service_fields()) keys.push_back(key);
  return keys;
}

// mem_limit and deploy.resources.limits.memory (and scale / deploy.replicas) say the same
// thing; compose rejects two different values rather than picking one.
void merge_deploy(const FieldCtx& ctx, const Node& deploy, const Node* scale, Service& s) {
  Service d;
  normalize_deploy(ctx.child("deploy"), deploy, d);
  auto take = [&](auto& into, const auto& from, const char* what) {
    if (!from) return;
    if (into && *into != *from)
      ctx.error(deploy.pos, std::string(what) + " and deploy.resources.limits disagree");
    else
      into = from;
  };
  take(s.limits.memory_bytes, d.limits.memory_bytes, "mem_limit");
  take(s.limits.cpus, d.limits.cpus, "cpus");
  take(s.limits.pids, d.limits.pids, "pids_limit");
  if (deploy.is_mapping() && deploy.find("replicas") != nullptr) {
    if (scale != nullptr && s.replicas != d.replicas)
      ctx.error(deploy.find("replicas")->pos, "scale and deploy.replicas disagree");
    s.replicas = d.replicas;
  }
  if (!d.extra.empty()) s.extra["deploy"] = d.extra["deploy"];
}

void record_keys(const Node& n, const std::string& prefix, std::vector<KeyUse>& out) {
  for (const Entry& e : n.entries) {
    if (e.key.rfind("x-", 0) == 0) continue;
    out.push_back(KeyUse{prefix + "." + e.key, e.key_pos});
    if (e.value.is_mapping()) record_keys(e.value, prefix + "." + e.key, out);
  }
}

}  // namespace

std::string default_image_tag(const std::string& image) {
  if (image.find('@') != std::string::npos) return image;
  size_t slash = image.rfind('/');
  std::string last = slash == std::string::npos ? image : image.substr(slash + 1);
  if (last.find(':') != std::string::npos) return image;
  return image + ":latest";
}

Service normalize_service(const FieldCtx& ctx, const Entry& entry) {
  Service s;
  s.name = entry.key;
  s.pos = entry.key_pos;
  const Node& n = entry.value;
  if (!n.is_mapping()) {
    ctx.type_error(n, "a mapping of service fields");
    return s;
  }
  static const std::vector<std::string> known = known_keys();
  ctx.check_keys(n, known, {}, "service \"" + s.name + "\"");
  record_keys(n, ctx.path, s.keys);

  // env_file entries first so that `environment` overrides them whatever the key order.
  if (const Node* env_file = n.find("env_file"))
    normalize_env_file(ctx.child("env_file"), *env_file, s);
  for (const Entry& e : n.entries) {
    if (e.key == "deploy" || e.key == "env_file") continue;
    if (auto field = fields().find(e.key); field != fields().end()) {
      field->second(ctx.child(e.key), e.value, s);
      continue;
    }
    auto generic = generic_service_fields().find(e.key);
    if (generic == generic_service_fields().end()) continue;
    nlohmann::json j = shape_json(ctx.child(e.key), e.value, generic->second);
    if (!j.is_null()) s.extra[e.key] = std::move(j);
  }
  if (const Node* deploy = n.find("deploy")) merge_deploy(ctx, *deploy, n.find("scale"), s);
  if (n.find("image") == nullptr && n.find("build") == nullptr && n.find("provider") == nullptr)
    ctx.error(entry.key_pos, "image is required (or build)");
  return s;
}

}  // namespace stack::spec
