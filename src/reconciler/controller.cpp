// The synchronous steps of one stack instance: resolving what a stack asks for, recording and
// removing containers, and reading what exists. Root on the host. The state store is the
// record of what was made; the kernel is asked (is the init still the process we started?)
// before any record is believed.
#include "reconciler/controller.h"
#include "reconciler/service_fields.h"

#include <algorithm>

#include <cstdio>
#include <unistd.h>

#include "common/files.h"
#include "common/private_root.h"
#include "engine/cgroup.h"
#include "engine/container.h"
#include "fs/image_store.h"
#include "reconciler/container_builder.h"
#include "model/runtime_record.h"
#include "spec/loader.h"
#include "state/store.h"

namespace stack::reconciler {

namespace {

using std::chrono::milliseconds;

int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

engine::ContainerProcess process_of(const state::ContainerRecord& r) {
  return {r.pid, r.pid_start_time, r.started_at};
}

}  // namespace

Controller::~Controller() = default;

Result<std::unique_ptr<Controller>> Controller::open(const Paths& paths) {
  std::unique_ptr<Controller> c(new Controller());
  c->paths_ = paths;
  // Root's alone, and tightened if an older version left it open (common/private_root.h).
  if (auto r = secure_state_root(paths.root); !r) return fail(r.error());
  c->store_ = STACK_TRY_CTX(state::Store::open(paths.root / "state.db"), "open state");
  c->images_ = std::make_unique<fs::ImageStore>(paths.root / "images");
  c->cgroups_ = STACK_TRY_CTX(engine::detect_cgroup_driver(), "cgroups");
  c->engine_ = std::make_unique<engine::Engine>(paths.init_binary, *c->cgroups_);
  return c;
}

std::filesystem::path Controller::container_dir(const std::string& name) const {
  return paths_.root / "containers" / name;
}

Result<engine::ContainerSpec> Controller::spec_of(const state::ContainerRecord& rec) const {
  if (!rec.runtime) return fail(rec.name + ": " + rec.runtime_error);
  engine::ContainerSpec spec = rec.runtime->spec;
  // The daemon's choice for user-namespaced layers, not the container's: never recorded.
  using LO = engine::ContainerSpec::LayerOwnership;
  spec.userns_layers = paths_.userns_layers == "copy"    ? LO::kCopy
                       : paths_.userns_layers == "idmap" ? LO::kIdmap
                                                         : LO::kAuto;
  spec.userns_layer_cache = paths_.root / "userns-layers";
  return spec;
}

engine::ContainerSpec Controller::located(const state::ContainerRecord& rec) const {
  // Whatever the record says (even an unreadable one), what exists is found where stack puts
  // it: the container's directory and cgroup follow from its name.
  if (auto recorded = spec_of(rec)) return std::move(*recorded);
  engine::ContainerSpec spec;
  spec.name = rec.name;
  spec.cgroup = paths_.cgroup_parent() + "/" + rec.project + "/" + rec.name;
  spec.dir = container_dir(rec.name);
  return spec;
}

Result<bool> Controller::refresh(state::ContainerRecord& rec) {
  using S = state::ContainerState;
  if (!state::is_up(rec.state)) return false;
  if (rec.state == S::kRestarting && rec.pid == 0) return false;  // waiting for its backoff
  auto proc = process_of(rec);
  if (engine::is_alive(proc)) return false;
  engine_->wait_exit(proc, milliseconds(0));  // reaps it if it was our child
  auto spec = located(rec);
  auto info = engine_->exit_info(spec);
  if (!info) return fail(info.error().wrap(rec.name));
  if (auto r = rec.transition(S::kExited, "record the exit of"); !r) return fail(r.error());
  rec.exit_code = info->code;
  rec.oom_killed = info->oom_killed;
  rec.finished_at = info->finished_at;
  rec.pid = 0;
  rec.pid_start_time = 0;
  if (!rec.health.empty()) rec.health = "";
  // The cgroup outlives its processes only until their end is read: nothing stays behind.
  if (auto r = engine_->release_cgroup(spec.cgroup); !r) return fail(r.error().wrap(rec.name));
  if (auto r = store_->put_container(rec); !r) return fail(r.error());
  release_cgroup_parents(paths_.root, engine_->cgroups(), *store_);
  return true;
}

Result<std::vector<state::ContainerRecord>> Controller::observe(const std::string& project) {
  auto records = store_->list_containers(project);
  if (!records) return fail(records.error());
  for (auto& rec : *records)
    if (auto r = refresh(rec); !r) return fail(r.error());
  return records;
}

Result<state::ContainerRecord> Controller::create_record(std::shared_ptr<const RuntimeRecord> rt,
                                                         int number) {
  state::ContainerRecord rec;
  rec.name = rt->spec.name;
  rec.project = rt->project;
  rec.service = rt->service;
  rec.number = number;
  rec.config_hash = rt->config_hash;
  rec.image = rt->image;
  rec.image_id = rt->image_id;
  rec.created_at = unix_ms();
  rec.runtime = std::move(rt);
  if (auto r = store_->put_container(rec); !r) return fail(r.error());
  return rec;
}

Result<state::ContainerRecord> Controller::rename_container(const state::ContainerRecord& rec,
                                                            const std::string& to) {
  // A running container's directory is renamed under it: its init holds it open and its
  // overlay is mounted, neither cares about the path. Its cgroup keeps its path (cgroup2 has no
  // rename); the container that takes the name gets another one (see unused_cgroup).
  if (!rec.runtime) return fail(rec.name + ": " + rec.runtime_error);
  auto rt = std::make_shared<RuntimeRecord>(*rec.runtime);
  auto& spec = rt->spec;
  auto dir = container_dir(to);
  if (::rename(spec.dir.c_str(), dir.c_str()) != 0 && errno != ENOENT)
    return fail_errno("rename " + spec.dir.string() + " to " + dir.string());
  spec.name = to;
  spec.dir = dir;
  state::ContainerRecord renamed = rec;
  renamed.name = to;
  renamed.runtime = std::move(rt);
  if (auto r = store_->rename_container(rec.name, renamed); !r) return fail(r.error());
  return renamed;
}

Result<std::string> Controller::unused_cgroup(const std::string& project, const std::string& wanted) {
  auto records = store_->list_containers(project);
  if (!records) return fail(records.error());
  auto taken = [&](const std::string& path) {
    return std::any_of(records->begin(), records->end(), [&](const auto& r) {
      return r.runtime && r.runtime->spec.cgroup == path;
    });
  };
  std::string path = wanted;
  for (int n = 2; taken(path); n++) path = wanted + "." + std::to_string(n);
  return path;
}

Result<std::filesystem::path> Controller::remove_container(const state::ContainerRecord& rec) {
  auto spec = located(rec);
  if (auto r = engine_->release_cgroup(spec.cgroup); !r)
    return fail(r.error().wrap("remove " + rec.name));
  std::filesystem::path aside;
  if (!spec.dir.empty() && ::access(spec.dir.c_str(), F_OK) == 0) {
    static uint64_t serial = 0;  // loop thread only
    aside = spec.dir.parent_path() /
            (std::string(kContainerAsidePrefix) + rec.name + "-" + std::to_string(::getpid()) +
             "-" + std::to_string(++serial));
    if (::rename(spec.dir.c_str(), aside.c_str()) != 0)
      return fail_errno("remove " + rec.name + ": set " + spec.dir.string() + " aside");
  }
  auto removed = store_->remove_container(rec.name);
  release_cgroup_parents(paths_.root, engine_->cgroups(), *store_);
  if (!removed) return fail(removed.error());
  return aside;
}

void remove_containers_set_aside(const std::filesystem::path& root) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root / "containers", ec))
    if (e.path().filename().string().rfind(kContainerAsidePrefix, 0) == 0)
      (void)remove_tree(e.path());
}

Result<std::vector<ContainerStatus>> Controller::ps(const std::string& project, bool all) {
  auto records = project.empty() ? store_->list_all_containers() : store_->list_containers(project);
  if (!records) return fail(records.error());
  std::vector<ContainerStatus> out;
  for (auto& rec : *records) {
    if (auto r = refresh(rec); !r) return fail(r.error());
    if (!all && rec.state != state::ContainerState::kRunning) continue;
    ContainerStatus s;
    s.name = rec.name;
    s.project = rec.project;
    s.service = rec.service;
    s.number = rec.number;
    s.image = rec.image;
    s.state = state::state_name(rec.state);
    if (rec.state == state::ContainerState::kRunning && rec.runtime)
      if (auto f = cgroups_->frozen(rec.runtime->spec.cgroup); f && *f) s.state = "paused";
    s.health = rec.health;
    s.pid = rec.pid;
    s.exit_code = rec.exit_code;
    s.oom_killed = rec.oom_killed;
    s.restarts = rec.restarts;
    s.created_at = rec.created_at;
    s.started_at = rec.started_at;
    s.finished_at = rec.finished_at;
    if (rec.runtime) s.command = rec.runtime->spec.process.argv;
    if (rec.runtime) s.labels = rec.runtime->labels;
    if (rec.runtime) s.annotations = rec.runtime->annotations;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace stack::reconciler
