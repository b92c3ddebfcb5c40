// The synchronous steps of one stack instance: resolving what a stack asks for, recording and
// removing containers, and reading what exists. Root on the host. The state store is the
// record of what was made; the kernel is asked (is the init still the process we started?)
// before any record is believed.
#include "reconciler/controller.h"

#include "common/files.h"
#include "common/private_root.h"
#include "engine/cgroup.h"
#include "engine/container.h"
#include "fs/image_store.h"
#include "reconciler/container_builder.h"
#include "reconciler/runtime_record.h"
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
  auto rt = runtime_from_json(rec.runtime_json);
  if (!rt) return fail(rt.error().wrap(rec.name));
  return rt->spec;
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
  if (rec.state != "running" && rec.state != "restarting") return false;
  if (rec.state == "restarting" && rec.pid == 0) return false;  // waiting for its backoff
  auto proc = process_of(rec);
  if (engine::is_alive(proc)) return false;
  engine_->wait_exit(proc, milliseconds(0));  // reaps it if it was our child
  auto spec = located(rec);
  auto info = engine_->exit_info(spec);
  if (!info) return fail(info.error().wrap(rec.name));
  rec.state = "exited";
  rec.exit_code = info->code;
  rec.oom_killed = info->oom_killed;
  rec.finished_at = info->finished_at;
  rec.pid = 0;
  rec.pid_start_time = 0;
  if (!rec.health.empty()) rec.health = "";
  // The cgroup outlives its processes only until their end is read: nothing stays behind.
  if (auto r = engine_->cgroups().remove(spec.cgroup); !r) return fail(r.error().wrap(rec.name));
  if (auto r = store_->put_container(rec); !r) return fail(r.error());
  return true;
}

Result<std::vector<planner::DesiredService>> Controller::desired(
    const spec::Stack& stack, std::map<std::string, fs::Image>& images) {
  std::vector<planner::DesiredService> desired;
  std::string missing;  // every problem at once, one per line
  auto report = [&missing](const std::string& line) {
    if (!missing.empty()) missing += '\n';
    missing += line;
  };
  for (const auto& svc : stack.services) {
    auto image = images_->get(svc.image);
    if (!image) {
      report(svc.image_pos.str() + ": " + image.error().message);
      continue;
    }
    // What the kernel would refuse at the start of a container (a user the image lacks, an
    // environment too large for execve) is found now, before anything is made.
    auto hostname = svc.hostname.empty()
                        ? planner::container_name(stack.name, svc.name, svc.replicas)
                        : svc.hostname;
    auto process = build_process(svc, *image, hostname);
    if (!process) report(process.error().message);
    else if (auto limits = check_exec_limits(svc, *process); !limits) report(limits.error().message);
    images.emplace(svc.name, *image);
    desired.push_back({svc.name, spec::config_hash(svc), spec::config_field_hashes(svc), image->id,
                       svc.replicas, svc.depends_on});
  }
  if (!missing.empty()) return fail(missing);
  return desired;
}

Result<std::vector<state::ContainerRecord>> Controller::observe(const std::string& project) {
  auto records = store_->list_containers(project);
  if (!records) return fail(records.error());
  for (auto& rec : *records)
    if (auto r = refresh(rec); !r) return fail(r.error());
  return records;
}

Result<state::ContainerRecord> Controller::create_record(const spec::Stack& stack,
                                                         const spec::Service& svc, int number,
                                                         const fs::Image& image) {
  auto rt = build_runtime(paths_, stack, svc, number, image);
  if (!rt) return fail(rt.error());
  state::ContainerRecord rec;
  rec.name = rt->spec.name;
  rec.project = stack.name;
  rec.service = svc.name;
  rec.number = number;
  rec.config_hash = spec::config_hash(svc);
  rec.image = svc.image;
  rec.image_id = image.id;
  rec.created_at = unix_ms();
  rt->fields = spec::config_field_hashes(svc);
  rec.runtime_json = to_json(*rt);
  if (auto r = store_->put_container(rec); !r) return fail(r.error());
  return rec;
}

Result<void> Controller::remove_container(const state::ContainerRecord& rec) {
  if (auto r = engine_->remove(located(rec)); !r) return fail(r.error().wrap("remove " + rec.name));
  return store_->remove_container(rec.name);
}

Result<std::vector<ContainerStatus>> Controller::ps(const std::string& project, bool all) {
  auto records = project.empty() ? store_->list_all_containers() : store_->list_containers(project);
  if (!records) return fail(records.error());
  std::vector<ContainerStatus> out;
  for (auto& rec : *records) {
    if (auto r = refresh(rec); !r) return fail(r.error());
    if (!all && rec.state != "running") continue;
    ContainerStatus s;
    s.name = rec.name;
    s.project = rec.project;
    s.service = rec.service;
    s.number = rec.number;
    s.image = rec.image;
    s.state = rec.state;
    s.health = rec.health;
    s.pid = rec.pid;
    s.exit_code = rec.exit_code;
    s.oom_killed = rec.oom_killed;
    s.restarts = rec.restarts;
    s.created_at = rec.created_at;
    s.started_at = rec.started_at;
    s.finished_at = rec.finished_at;
    if (auto rt = runtime_from_json(rec.runtime_json)) s.command = rt->spec.process.argv;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace stack::reconciler
