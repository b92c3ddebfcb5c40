// The desired state of a project (see desired.h): from the typed stack file to the planner's
// input, once per reconcile pass.
#include "reconciler/desired.h"
#include "reconciler/providers.h"

#include <cerrno>
#include <set>

#include <nlohmann/json.hpp>

#include "fs/image_store.h"
#include "common/sha256.h"
#include "reconciler/container_builder.h"
#include "reconciler/volumes.h"
#include "spec/network_fields.h"
#include "spec/service_fields.h"
#include "spec/loader.h"

namespace stack::reconciler {

namespace {

model::NetworkConfig network_config(const spec::Stack& stack, const spec::Network& n) {
  model::NetworkConfig c;
  c.project = stack.name;
  c.key = n.key;
  c.name = n.name;
  c.driver = n.driver;
  c.internal = n.internal;
  c.enable_ipv6 = n.enable_ipv6;
  c.enable_ipv4 = n.enable_ipv4.value_or(true);
  for (const auto& p : n.ipam) c.ipam.push_back({p.subnet, p.ip_range, p.gateway, p.aux_addresses});
  c.driver_opts = n.driver_opts;
  c.labels = n.labels;
  c.config_hash = spec::network_config_hash(n);
  return c;
}

// `deploy.update_config` (or `rollback_config`) as the planner reads it (the loader checked
// its shape).
planner::UpdatePolicy update_policy(const spec::Service& svc, const char* which = "update_config") {
  planner::UpdatePolicy u;
  auto deploy = svc.extra.find("deploy");
  if (deploy == svc.extra.end() || !deploy->is_object() || !deploy->contains(which))
    return u;
  const auto& c = (*deploy)[which];
  if (c.value("order", "") == "start-first") u.order = planner::UpdatePolicy::Order::kStartFirst;
  if (c.contains("parallelism") && c["parallelism"].is_number_integer())
    u.parallelism = c["parallelism"].get<int>();
  auto duration = [&](const char* key) {
    if (c.contains(key) && c[key].is_string())
      if (auto d = spec::parse_duration(c[key].get<std::string>())) return *d;
    return std::chrono::milliseconds(0);
  };
  u.delay = duration("delay");
  u.monitor = duration("monitor");
  if (c.contains("max_failure_ratio") && c["max_failure_ratio"].is_number())
    u.max_failure_ratio = c["max_failure_ratio"].get<double>();
  std::string action = c.value("failure_action", "pause");
  if (action == "continue") u.failure_action = planner::UpdatePolicy::FailureAction::kContinue;
  if (action == "rollback") u.failure_action = planner::UpdatePolicy::FailureAction::kRollback;
  return u;
}

// `platform:` of a service ("" for the default, linux/amd64).
std::string platform_of(const spec::Service& svc) {
  auto it = svc.extra.find("platform");
  return it != svc.extra.end() && it->is_string() ? it->get<std::string>() : "";
}

// The networks a service's containers join (as build_runtime names them), without its image.
std::vector<std::string> service_networks(const spec::Stack& stack, const spec::Service& svc) {
  std::vector<std::string> out;
  if (!svc.network_mode.empty() && svc.network_mode != "bridge" && svc.network_mode != "default")
    return out;
  for (const auto& a : svc.networks) out.push_back(spec::network_name(stack, a.network));
  if (svc.networks.empty()) out.push_back(spec::network_name(stack, "default"));
  return out;
}

}  // namespace

std::shared_ptr<const model::BuildConfig> build_config(const spec::Service& svc) {
  if (!svc.build) return nullptr;
  const spec::Build& b = *svc.build;
  auto c = std::make_shared<model::BuildConfig>();
  c->image = svc.image;
  c->tags = b.tags;
  c->context = b.context;
  c->dockerfile = b.dockerfile_inline.empty() ? b.dockerfile : "";
  c->dockerfile_inline = b.dockerfile_inline;
  c->target = b.target;
  c->args = b.args;
  c->labels = b.labels;
  c->network = b.network;
  c->no_cache = b.no_cache;
  c->pull = b.pull;
  c->shm_size = b.shm_size;
  for (const auto& h : b.extra_hosts) c->extra_hosts.emplace_back(h.host, h.ip);
  c->where = b.pos.str();
  return c;
}

static Result<std::shared_ptr<const RuntimeRecord>> replica_record(
    const spec::Stack& stack, const spec::Service& svc, int number, const fs::Image& image,
    const fs::ImageStore& images, const Paths& paths,
    const std::map<std::string, std::string>& network_hashes) {
  auto r = build_runtime(paths, stack, svc, number, image, &images);
  if (!r) return fail(r.error());
  // What the kernel would refuse at the start, found before anything is made.
  if (auto limits = check_exec_limits(svc, r->spec.process); !limits) return fail(limits.error());
  r->config_hash = spec::config_hash(svc);
  r->fields = spec::config_field_hashes(svc);
  r->image = svc.image;
  r->image_id = image.id;
  for (auto& join : r->networks)
    if (auto h = network_hashes.find(join.network); h != network_hashes.end())
      join.config_hash = h->second;
  return std::shared_ptr<const RuntimeRecord>(std::make_shared<RuntimeRecord>(std::move(*r)));
}

static std::map<std::string, std::string> network_hashes(const spec::Stack& stack) {
  std::map<std::string, std::string> out;
  for (const auto& n : stack.networks)
    if (!n.external) out[n.name] = spec::network_config_hash(n);
  return out;
}

Result<std::shared_ptr<const RuntimeRecord>> replica_record(const spec::Stack& stack,
                                                            const std::string& service, int number,
                                                            fs::ImageStore& images,
                                                            const Paths& paths) {
  const spec::Service* svc = stack.find(service);
  if (!svc) return fail("no such service in project " + stack.name + ": " + service);
  auto image = images.get(svc->image);
  if (!image) return fail(image.error().wrap(svc->image_pos.str()));
  return replica_record(stack, *svc, number, *image, images, paths, network_hashes(stack));
}

std::vector<planner::Dependency> dependencies_of(const spec::Service& service) {
  std::vector<planner::Dependency> out;
  for (const auto& d : service.dependencies) {
    planner::Dependency dep{d.service, planner::Condition::kStarted, d.required, d.restart};
    if (d.condition == "service_healthy") dep.condition = planner::Condition::kHealthy;
    if (d.condition == "service_completed_successfully")
      dep.condition = planner::Condition::kCompletedSuccessfully;
    out.push_back(std::move(dep));
  }
  return out;
}

Result<planner::DesiredState> desired_state(const spec::Stack& stack, const Paths& paths,
                                            fs::ImageStore& images) {
  planner::DesiredState d;
  d.project = stack.name;
  std::map<std::string, std::string> network_hashes;  // by host name
  for (const auto& n : stack.networks) {
    if (n.external) continue;  // made by someone else
    auto config = std::make_shared<const model::NetworkConfig>(network_config(stack, n));
    network_hashes[config->name] = config->config_hash;
    d.networks.push_back({config->name, config->config_hash, std::move(config)});
  }
  auto volumes = desired_volumes(paths, stack);
  if (!volumes) return fail(volumes.error());
  d.volumes = std::move(*volumes);
  std::string problems;  // every one at once, one per line
  auto report = [&problems](const std::string& line) {
    problems += (problems.empty() ? "" : "\n") + line;
  };
  for (const auto& svc : stack.services) {
    planner::DesiredService s;
    s.name = svc.name;
    s.config_hash = spec::config_hash(svc);
    s.fields = spec::config_field_hashes(svc);
    if (svc.extra.contains("provider")) {  // no container: its binary, on an explicit up
      s.replicas = 0;
      s.depends_on = dependencies_of(svc);
      s.provider = std::make_shared<const model::ProviderConfig>(provider_config(stack, svc));
      d.services.push_back(std::move(s));
      continue;
    }
    // A secret's or config's content is not in the file: its digest joins the configuration,
    // so a changed secret recreates the containers that mount it.
    auto digest = secrets_digest(stack, svc);
    if (!digest) {
      report(digest.error().message);
      continue;
    }
    if (!digest->empty()) {
      s.fields["secret content"] = *digest;
      s.config_hash = sha256_hex(s.config_hash + *digest);
    }
    for (const auto& m : svc.volumes)
      if (m.type == "volume" && !m.source.empty())
        if (const auto* v = stack.find_volume(m.source.string()); v && !v->external)
          s.volumes.push_back(v->name);
    s.replicas = svc.replicas;
    s.container_name = svc.container_name;
    s.depends_on = dependencies_of(svc);
    s.update = update_policy(svc);
    s.image = svc.image;
    s.platform = platform_of(svc);
    s.pull_policy = spec::effective_pull_policy(svc);
    s.image_where = svc.image_pos.str();
    s.build = build_config(svc);
    bool mounts_present = true;  // every `type: image` mount's image is in the store
    for (const auto& m : svc.volumes) {
      if (m.type != "image") continue;
      planner::DesiredService::MountImage mi{m.source.string(), true, {}};
      auto got = images.get(mi.ref);
      if (!got && got.error().sys_errno != ENOENT) {
        report(m.pos.str() + ": image mount: " + got.error().message);
        continue;
      }
      mi.present = got.has_value();
      if (got && got->pulled_at > 0)
        mi.last_pulled =
            std::chrono::system_clock::time_point(std::chrono::seconds(got->pulled_at));
      mounts_present = mounts_present && mi.present;
      s.mount_images.push_back(std::move(mi));
    }
    auto image = images.get(svc.image);
    if (!mounts_present && image) {
      // Its records are made when its creates run, after the pulls (replica_record).
      s.image_id = image->id;
      s.records.resize(static_cast<size_t>(std::max(svc.replicas, 0)));
      for (const auto& n : service_networks(stack, svc)) s.networks.push_back(n);
      s.network_service = spec::joined_service(svc);
      s.healthcheck = svc.healthcheck && !svc.healthcheck->disable;
      d.services.push_back(std::move(s));
      continue;
    }
    if (!image && image.error().sys_errno == ENOENT) {
      // Not here yet: the planner decides whether it is pulled (and its creates follow the
      // pull, their records made then, see replica_record) or the service cannot run.
      s.image_present = false;
      s.records.resize(static_cast<size_t>(std::max(svc.replicas, 0)));
      for (const auto& n : service_networks(stack, svc)) s.networks.push_back(n);
      s.network_service = spec::joined_service(svc);
      s.healthcheck = svc.healthcheck && !svc.healthcheck->disable;
      d.services.push_back(std::move(s));
      continue;
    }
    if (!image) {
      report(svc.image_pos.str() + ": " + image.error().message);
      continue;
    }
    s.image_id = image->id;
    if (image->pulled_at > 0)
      s.last_pulled = std::chrono::system_clock::time_point(std::chrono::seconds(image->pulled_at));
    bool ok = true;
    for (int n = 1; n <= svc.replicas && ok; n++) {
      auto r = replica_record(stack, svc, n, *image, images, paths, network_hashes);
      if (!r) {
        report(r.error().message);
        ok = false;
        break;
      }
      if (n == 1) {
        for (const auto& join : (*r)->networks) s.networks.push_back(join.network);
        s.network_service = (*r)->network_service;
        s.healthcheck = (*r)->health.enabled();
      }
      s.records.push_back(std::move(*r));
    }
    if (ok) d.services.push_back(std::move(s));
  }
  if (!problems.empty()) return fail(problems);
  return d;
}

void apply_rollbacks(planner::DesiredState& desired, const spec::Stack& stack,
                     const Rollbacks& rollbacks) {
  for (auto& s : desired.services) {
    auto back = rollbacks.find(s.name);
    const spec::Service* svc = stack.find(s.name);
    if (back == rollbacks.end() || back->second.empty() || !svc) continue;
    const auto& first = back->second.front();
    s.config_hash = first.config_hash;
    s.image_id = first.image_id;
    s.fields = first.runtime->fields;
    s.update = update_policy(*svc, "rollback_config");
    std::set<int> taken;  // newest first: the first record of each replica wins
    for (const auto& h : back->second) {
      if (h.config_hash != first.config_hash || h.number < 1 ||
          h.number > static_cast<int>(s.records.size()) || !s.records[h.number - 1] ||
          !taken.insert(h.number).second)
        continue;  // (a null record: its image is pulled first, the file's record made then)
      // Where it lives is this replica's, whatever name the old container had when it went
      // (a start-first update renames it first).
      auto r = std::make_shared<RuntimeRecord>(*h.runtime);
      const auto& here = s.records[h.number - 1]->spec;
      r->spec.name = here.name;
      r->spec.dir = here.dir;
      r->spec.cgroup = here.cgroup;
      s.records[h.number - 1] = std::move(r);
    }
  }
}

}  // namespace stack::reconciler
