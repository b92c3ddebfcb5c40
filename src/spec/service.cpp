// Service field normalisers and the table that dispatches to them. Adding a field: write a
// normaliser, add it to kFields, remove it from kLater.
#include "spec/service.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

namespace stack::spec {
namespace {

using Normaliser = std::function<void(const FieldCtx&, const Node&, Service&)>;

// Compose service keys stack does not implement yet ("not supported yet: services.web.ports").
const std::vector<std::string> kLater = {"annotations",
                                         "attach",
                                         "blkio_config",
                                         "build",
                                         "cap_add",
                                         "cap_drop",
                                         "cgroup",
                                         "cgroup_parent",
                                         "configs",
                                         "container_name",
                                         "cpu_count",
                                         "cpu_percent",
                                         "cpu_period",
                                         "cpu_quota",
                                         "cpu_rt_period",
                                         "cpu_rt_runtime",
                                         "cpuset",
                                         "credential_spec",
                                         "develop",
                                         "device_cgroup_rules",
                                         "devices",
                                         "dns",
                                         "dns_opt",
                                         "dns_search",
                                         "domainname",
                                         "driver_opts",
                                         "expose",
                                         "extends",
                                         "external_links",
                                         "extra_hosts",
                                         "gpus",
                                         "group_add",
                                         "healthcheck",
                                         "init",
                                         "ipc",
                                         "isolation",
                                         "labels",
                                         "label_file",
                                         "links",
                                         "mac_address",
                                         "mem_reservation",
                                         "mem_swappiness",
                                         "memswap_limit",
                                         "models",
                                         "network_mode",
                                         "networks",
                                         "oom_kill_disable",
                                         "oom_score_adj",
                                         "pid",
                                         "platform",
                                         "ports",
                                         "post_start",
                                         "pre_stop",
                                         "privileged",
                                         "profiles",
                                         "provider",
                                         "pull_policy",
                                         "read_only",
                                         "runtime",
                                         "secrets",
                                         "security_opt",
                                         "shm_size",
                                         "stdin_open",
                                         "storage_opt",
                                         "sysctls",
                                         "tmpfs",
                                         "tty",
                                         "ulimits",
                                         "use_api_socket",
                                         "userns_mode",
                                         "uts",
                                         "volumes_from"};

const std::vector<std::string> kSignals = {
    "HUP",  "INT",  "QUIT", "ILL",    "TRAP",   "ABRT",  "BUS",  "FPE",  "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM",   "STKFLT", "CHLD",  "CONT", "STOP", "TSTP", "TTIN", "TTOU",
    "URG",  "XCPU", "XFSZ", "VTALRM", "PROF",   "WINCH", "IO",   "POLL", "PWR",  "SYS"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

void set_string(std::string Service::*field, const FieldCtx& ctx, const Node& n, Service& s) {
  if (auto v = ctx.string(n)) s.*field = *v;
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
  // YAML 1.1 reads a bare `no` as a boolean; yaml-cpp hands us the text, "no" or "false".
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

void normalize_depends_on(const FieldCtx& ctx, const Node& n, Service& s) {
  s.depends_on.clear();
  auto add = [&](const std::string& name) {
    if (std::find(s.depends_on.begin(), s.depends_on.end(), name) == s.depends_on.end())
      s.depends_on.push_back(name);
  };
  if (n.is_sequence()) {
    for (const Node& item : n.items)
      if (auto name = ctx.string(item)) add(*name);
    return;
  }
  if (!n.is_mapping()) {
    ctx.type_error(n, "a list of service names or a mapping");
    return;
  }
  for (const Entry& e : n.entries) {
    FieldCtx dep = ctx.child(e.key);
    if (e.value.is_mapping()) {
      dep.check_keys(e.value, {"condition", "restart", "required"}, {});
      if (const Node* c = e.value.find("condition")) {
        auto cond = dep.child("condition").string(*c);
        if (cond && *cond != "service_started" && *cond != "service_healthy" &&
            *cond != "service_completed_successfully")
          dep.child("condition")
              .type_error(*c, "service_started, service_healthy or service_completed_successfully");
      }
    } else if (!e.value.is_null()) {
      dep.type_error(e.value, "a mapping like {condition: service_started}");
    }
    add(e.key);
  }
}

void normalize_replicas(const FieldCtx& ctx, const Node& n, Service& s) {
  if (auto v = ctx.integer(n, 0)) s.replicas = static_cast<int>(std::min<int64_t>(*v, 1 << 20));
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
}

const std::map<std::string, Normaliser>& fields() {
  static const std::map<std::string, Normaliser> table = {
      {"image", normalize_image},
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
      {"working_dir", [](const FieldCtx& c, const Node& n,
                         Service& s) { set_string(&Service::working_dir, c, n, s); }},
      {"hostname", [](const FieldCtx& c, const Node& n,
                      Service& s) { set_string(&Service::hostname, c, n, s); }},
      {"user",
       [](const FieldCtx& c, const Node& n, Service& s) { set_string(&Service::user, c, n, s); }},
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
      {"logging", normalize_logging},
      {"depends_on", normalize_depends_on},
      {"restart", normalize_restart},
  };
  return table;
}

std::vector<std::string> known_keys() {
  std::vector<std::string> keys;
  for (const auto& [key, _] : fields()) keys.push_back(key);
  return keys;
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
  ctx.check_keys(n, known, kLater, "service \"" + s.name + "\"");

  // env_file entries first so that `environment` overrides them whatever the key order.
  if (const Node* env_file = n.find("env_file"))
    normalize_env_file(ctx.child("env_file"), *env_file, s);
  for (const Entry& e : n.entries) {
    auto field = fields().find(e.key);
    if (field == fields().end() || e.key == "deploy" || e.key == "env_file") continue;
    field->second(ctx.child(e.key), e.value, s);
  }
  if (const Node* deploy = n.find("deploy")) merge_deploy(ctx, *deploy, n.find("scale"), s);
  if (n.find("image") == nullptr && n.find("build") == nullptr)
    ctx.error(entry.key_pos, "image is required");
  return s;
}

}  // namespace stack::spec
