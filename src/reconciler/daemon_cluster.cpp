// The daemon in a cluster: `up` writes the project (its canonical JSON, hash and placements) to
// /stack/projects/<project>, `down` removes it with its assignments (etcd unreachable: this
// node's share goes and the record goes when etcd is back); what runs here is what the
// scheduler assigns here, reconciled by the same planner and executor, limited to this node's
// slots. Store calls run on the agent's threads, never on the loop; a view of the assignments
// reaches the loop by post. An unreachable store hands on no view: nothing is removed.
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "cluster/assignment_watch.h"
#include "cluster/ipam.h"
#include "cluster/node_agent.h"
#include "cluster/placement.h"
#include "cluster/project_record.h"
#include "cluster/scheduler_loop.h"
#include "common/files.h"
#include "common/log.h"
#include "common/sha256.h"
#include "net/firewall.h"
#include "reconciler/cluster_ingress.h"
#include "reconciler/cluster_mesh.h"
#include "reconciler/daemon.h"
#include "reconciler/on_agent.h"
#include "reconciler/project_lock.h"

namespace stack::reconciler {

namespace asio = boost::asio;

awaitable<Result<Daemon::UpOutcome>> Daemon::cluster_up(UpRequest request) {
  auto loading = [opts = budgeted(request.load)] { return spec::load(opts); };
  auto stack = co_await on_pool(*pool_, std::move(loading));
  if (!stack) co_return fail(stack.error());
  if (request.warn)
    for (const auto& w : stack->warnings) request.warn(w);
  if (auto r = spec::check_supported(*stack, true); !r) co_return fail(r.error());
  if (auto r = prepare_up(*stack, request); !r) co_return fail(r.error());
  if (!request.options.plan.services.empty())
    co_return fail("up SERVICE... in a cluster: the project is placed as a whole (stack up)");
  // The routing mesh's network (cluster_ingress.h), with the subnet the cluster recorded, else
  // this daemon's (the first recorded stays); then its ports claimed cluster-wide before the
  // project is written (a fixed one another service has is refused; an ephemeral one gets
  // its number), so that a project in the store has its ports.
  auto recorded = [agent = cluster_agent]() -> Result<std::string> {
    auto key = cluster::keys::ipam_subnet(kIngressNetwork);
    auto r = agent->store().range(cluster::KeyRange::exact(key));
    if (!r) return fail(r.error().wrap("read the cluster's ingress subnet"));
    if (r->kvs.empty()) return std::string();
    auto s = cluster::ClusterIpam(agent->store()).subnet(kIngressNetwork);
    if (!s) return fail(s.error());
    return s->subnet.str();
  };
  auto subnet = co_await on_agent(*cluster_agent, std::move(recorded));
  if (!subnet) co_return fail(subnet.error());
  const std::string configured =
      options_.ingress_subnet.empty() ? kIngressSubnet : options_.ingress_subnet;
  if (!subnet->empty() && *subnet != configured)
    log::get("cluster")->warn("ingress network: the cluster has subnet {} (this daemon's {} is not "
                              "used: the first recorded stays)",
                              *subnet, configured);
  auto meshed = attach_ingress(*stack, subnet->empty() ? configured : *subnet);
  if (!meshed) co_return fail(meshed.error());
  if (!request.options.dry_run) {
    std::vector<cluster::PortWant> wants;
    for (const auto& e : *meshed) wants.push_back(e.want);
    auto claim = [agent = cluster_agent, project = stack->name,
                  wants = std::move(wants)]() -> Result<std::map<std::string, int>> {
      return cluster::claim_ingress_ports(agent->store(), project, wants);
    };
    auto claimed = co_await on_agent(*cluster_agent, std::move(claim));
    if (!claimed) co_return fail(claimed.error());
    set_ephemeral_ports(*stack, *meshed, *claimed);
  }
  auto placements = cluster::placements_of(*stack);
  if (!placements) co_return fail(placements.error());
  cluster::ProjectRecord rec;
  rec.name = stack->name;
  rec.spec = spec::render_json(spec::stack_json(*stack));
  rec.hash = sha256_hex(rec.spec);
  rec.placements = std::move(*placements);
  UpOutcome out{stack->name, {}, {}};
  if (request.options.dry_run) co_return out;
  cluster_leaving_.erase(rec.name);  // up again after a down that failed half-way here
  auto put = [agent = cluster_agent, key = cluster::project_key(rec.name),
              value = cluster::encode_project(rec)]() -> Result<void> {
    auto r = agent->store().put(key, value);
    if (!r) return fail(r.error().wrap("write the project to the cluster"));
    return {};
  };
  if (auto r = co_await on_agent(*cluster_agent, std::move(put)); !r) co_return fail(r.error());
  log::get("cluster")->info("project={} hash={} written to the cluster", rec.name,
                            rec.hash.substr(0, 12));
  co_return out;
}

namespace {

// Removes PROJECT's record, its slots and their per-node index keys; with IF_HASH, only while
// the record is the one of that hash, unchanged since read (false: it was not, nothing done).
Result<bool> erase_project(cluster::Store& store, const std::string& project,
                           const std::optional<std::string>& if_hash) {
  using cluster::KeyRange;
  using cluster::TxnOp;
  const std::string key = cluster::project_key(project);
  std::vector<cluster::Compare> guard;
  if (if_hash) {
    auto cur = store.range(KeyRange::exact(key));
    if (!cur) return fail(cur.error());
    if (cur->kvs.empty()) return true;  // gone already
    auto rec = cluster::decode_project(cur->kvs[0].value, key);
    if (rec && !if_hash->empty() && rec->hash != *if_hash) return false;  // a newer up
    guard.push_back(cluster::Compare::mod_revision(key, cluster::Compare::Op::Equal,
                                                   cur->kvs[0].mod_revision));
  }
  // The per-node index keys of its slots go in the same txn (a slot moved meanwhile leaves an
  // index key the scheduler's next pass removes: the project is gone by then).
  auto slots = cluster::read_project_slots(store, project);
  if (!slots) return fail(slots.error());
  std::vector<TxnOp> ops = {TxnOp::erase(KeyRange::exact(key)),
                            TxnOp::erase(KeyRange::with_prefix(cluster::assign_prefix(project)))};
  bool first = true;
  // etcd takes at most 128 operations in a txn: the first holds the record's removal.
  auto flush = [&]() -> Result<bool> {
    auto r = store.txn(first ? guard : std::vector<cluster::Compare>{}, ops, {});
    if (!r) return fail(r.error());
    ops.clear();
    bool ok = r->succeeded || !first;
    first = false;
    return ok;
  };
  for (const auto& [service, slot, node] : *slots) {
    ops.push_back(TxnOp::erase(
        KeyRange::exact(cluster::keys::node_assign(node, project, service, slot))));
    if (ops.size() == 100) {
      auto r = flush();
      if (!r || !*r) return r;
    }
  }
  if (ops.empty()) return true;
  return flush();
}

}  // namespace

awaitable<Result<void>> Daemon::cluster_down(const std::string& project) {
  // Known unreachable (the lease's keepalive fails): no wait on the store's timeout.
  if (auto s = cluster_agent->status(); s.state == cluster::NodeAgent::State::Unreachable)
    co_return fail("remove project " + project + " from the cluster: etcd is unreachable (" +
                   s.error + ")");
  auto erase = [agent = cluster_agent, project]() -> Result<void> {
    auto r = erase_project(agent->store(), project, std::nullopt);
    if (!r) return fail(r.error().wrap("remove project " + project + " from the cluster"));
    // After the project: a port freed first could be claimed by another while it still runs.
    if (auto p = cluster::release_ingress_ports(agent->store(), project); !p)
      return fail(p.error().wrap("remove project " + project + " from the cluster"));
    return {};
  };
  // Before the erase: the view without the project may reach the loop before this resumes,
  // and must not start a second down here (it would cancel this one).
  cluster_leaving_.insert(project);
  if (auto r = co_await on_agent(*cluster_agent, std::move(erase)); !r) {
    cluster_leaving_.erase(project);
    co_return r;
  }
  cluster_slots_.erase(project);  // no pass of this node makes it again meanwhile
  std::error_code ec;
  std::filesystem::remove(cluster_file(project), ec);
  std::filesystem::remove(cluster_down_marker(project), ec);
  co_return Result<void>{};
}

Result<void> Daemon::cluster_down_later(const std::string& project) {
  std::string hash;
  if (auto spec = read_file(cluster_file(project), spec::kMaxStackFileBytes, "");
      spec.has_value())
    hash = sha256_hex(*spec);
  auto marker = cluster_down_marker(project);
  if (auto r = make_dirs(marker.parent_path(), 0700); !r) return r;
  if (auto r = write_file_atomic(marker, hash, 0600); !r) return r;
  cluster_slots_.erase(project);
  std::error_code ec;
  std::filesystem::remove(cluster_file(project), ec);
  return {};
}

std::filesystem::path Daemon::cluster_down_marker(const std::string& project) const {
  return paths_.root / "cluster" / (project + ".down");
}

awaitable<void> Daemon::cluster_retry_down(std::string project, std::string hash) {
  auto erase = [agent = cluster_agent, project, hash]() -> Result<bool> {
    auto r = erase_project(agent->store(), project, hash);
    if (!r) return fail(r.error().wrap("remove project " + project + " from the cluster"));
    // Its published ports go with it (not when a newer up kept the project: they are its).
    if (*r)
      if (auto p = cluster::release_ingress_ports(agent->store(), project); !p)
        return fail(p.error().wrap("remove project " + project + " from the cluster"));
    return r;
  };
  auto r = co_await on_agent(*cluster_agent, std::move(erase));
  cluster_retrying_.erase(project);
  auto log = log::get("cluster");
  if (!r) {
    log->warn("{} (the next view tries again)", r.error().message);
    co_return;
  }
  std::error_code ec;
  std::filesystem::remove(cluster_down_marker(project), ec);
  if (*r)
    log->info("cluster: project={} removed from the cluster (its down here did not reach it)",
              project);
  else
    log->info("cluster: project={} was brought up again elsewhere: its earlier down is dropped",
              project);
}

std::filesystem::path Daemon::cluster_file(const std::string& project) const {
  return paths_.root / "cluster" / (project + ".json");
}

bool Daemon::is_cluster_project(const state::ProjectRecord& rec) const {
  return rec.files.size() == 1 && std::filesystem::path(rec.files[0]) == cluster_file(rec.name);
}

void Daemon::restrict_to_slots(planner::DesiredState& desired) const {
  auto it = cluster_slots_.find(desired.project);
  if (it == cluster_slots_.end()) return;
  std::set<std::string> used;
  for (auto& s : desired.services) {
    auto sl = it->second.find(s.name);
    s.slots = sl != it->second.end() ? sl->second : std::set<int>{};
    if (!s.slots->empty()) used.insert(s.networks.begin(), s.networks.end());
  }
  // A network is made here only when a replica here joins it, or the routing mesh answers a
  // service's published ports on it here (cluster_mesh.h: every node, replica or not). Made
  // for a project with nothing here, a shared overlay (`name:`) stayed that project's on this
  // node: another project's `down` here left its bridge, removed only when the first project
  // went from the cluster, later, by this node's view.
  auto spec = read_file(cluster_file(desired.project), spec::kMaxStackFileBytes, "");
  if (spec)
    for (const auto& m : mesh_services(*spec)) used.insert(m.network);
  // One made here before for a replica that moved away goes (the planner removes it once the
  // replica's container is gone), and comes back with the next slot that joins it. Not the
  // ingress network: every project's meshed ports use it on every node, and it goes only with
  // the last of them (steps.cpp remove_network) — released for one project with no replica
  // here, it took the other projects' endpoints on this node with it.
  for (const auto& n : desired.networks)
    if (!used.count(n.name) && n.name != kIngressNetwork) desired.released_networks.insert(n.name);
  std::erase_if(desired.networks,
                [&](const planner::DesiredNetwork& n) { return !used.count(n.name); });
}

awaitable<void> Daemon::cluster_gone(std::string project) {
  auto noop = [](const std::string&, const std::string&, std::chrono::milliseconds) {};
  if (auto r = co_await down(project, std::nullopt, noop); !r)
    log::get("cluster")->error("down project={}: {}", project, r.error().message);
  cluster_leaving_.erase(project);  // failed: the next view tries again
  std::error_code ec;
  std::filesystem::remove(cluster_file(project), ec);
}

std::set<std::string> Daemon::mesh_projects(const std::string& network) const {
  return cluster_mesh_ ? cluster_mesh_->projects_on(network) : std::set<std::string>{};
}

namespace {
const char* proto_name(int proto) {
  switch (static_cast<net::Proto>(proto)) {
    case net::Proto::kUdp: return "udp";
    case net::Proto::kSctp: return "sctp";
    case net::Proto::kTcp: break;
  }
  return "tcp";
}
}  // namespace

std::vector<std::string> Daemon::mesh_ports(const std::string& project,
                                            const std::string& service) const {
  std::vector<std::string> out;
  if (!cluster_mesh_) return out;
  for (const auto& p : cluster_mesh_->ports_of(project, service))
    out.push_back("0.0.0.0:" + std::to_string(p.published) + "->" + std::to_string(p.target) +
                  "/" + proto_name(p.proto));
  return out;
}

int Daemon::mesh_port(const std::string& project, const std::string& service, int target,
                      const std::string& proto) const {
  if (!cluster_mesh_) return 0;
  for (const auto& p : cluster_mesh_->ports_of(project, service))
    if (p.target == target && proto == proto_name(p.proto)) return p.published;
  return 0;
}

void Daemon::start_cluster() {
  if (!cluster_agent || scheduler_) return;
  // The agent outlives the daemon (stackd's main): a shared_ptr that owns nothing.
  std::shared_ptr<cluster::Store> store(std::shared_ptr<void>(), &cluster_agent->store());
  cluster::SchedulerLoopOptions so;
  so.node = cluster_agent->name();
  so.lease = [agent = cluster_agent] {
    auto s = agent->status();
    return s.state == cluster::NodeAgent::State::Ready ? s.lease : 0;
  };
  scheduler_ = std::make_unique<cluster::SchedulerLoop>(store, std::move(so));
  assignments_ = std::make_unique<cluster::AssignmentWatch>(
      store, cluster_agent->name(), [this](cluster::LocalView view) {
        asio::post(io_, [this, view = std::move(view)] {
          if (!stopping_) cluster_view(view);
        });
      });
  scheduler_->start();
  assignments_->start();
}

void Daemon::stop_cluster() {
  if (scheduler_) scheduler_->stop();
  if (assignments_) assignments_->stop();
}

void Daemon::cluster_view(const std::map<std::string, cluster::LocalProject>& view) {
  auto log = log::get("cluster");
  auto& store = controller_->store();
  std::error_code ec;
  for (const auto& [name, lp] : view) {
    if (cluster_leaving_.count(name)) continue;  // a view read before its down here
    if (auto marker = cluster_down_marker(name); std::filesystem::exists(marker, ec)) {
      auto hash = read_file(marker, 1024, "the pending down of " + name);
      if (hash && (hash->empty() || *hash == lp.project.hash)) {
        if (cluster_retrying_.insert(name).second)
          asio::co_spawn(io_, cluster_retry_down(name, *hash), asio::detached);
        continue;  // taken down here: not run again
      }
      log->info("cluster: project={} was brought up again: its earlier down is dropped", name);
      std::filesystem::remove(marker, ec);
    }
    auto path = cluster_file(name);
    auto old = read_file(path, spec::kMaxStackFileBytes, "the cluster's copy of " + name);
    if (!old || *old != lp.project.spec) {
      if (auto r = make_dirs(path.parent_path(), 0700); !r) {
        log->error("project={}: {}", name, r.error().message);
        continue;
      }
      if (auto r = write_file_atomic(path, lp.project.spec, 0600); !r) {
        log->error("project={}: {}", name, r.error().message);
        continue;
      }
    }
    auto known = store.get_project(name);
    if (!known) {
      log->error("project={}: {}", name, known.error().message);
      continue;
    }
    if (!*known || !is_cluster_project(**known)) {
      state::ProjectRecord rec;
      rec.name = name;
      rec.files = {path.string()};
      rec.working_dir = path.parent_path().string();
      rec.environment_json = "{}";
      rec.created_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      if (auto r = store.put_project(rec); !r) {
        log->error("project={}: {}", name, r.error().message);
        continue;
      }
    }
    size_t here = 0;
    for (const auto& [svc, slots] : lp.slots) here += slots.size();
    log->info("cluster: project={} hash={} slots here={}", name, lp.project.hash.substr(0, 12), here);
    cluster_slots_[name] = lp.slots;
    asio::co_spawn(io_, guarded_reconcile(name, "cluster assignment"), asio::detached);
  }
  // The routing mesh: every project's published ports answer here (before a removed project's
  // networks go below: its rules leave first).
  if (cluster_mesh_) cluster_mesh_->projects(view);
  // The pending down of a project the cluster no longer has is done.
  for (const auto& e : std::filesystem::directory_iterator(paths_.root / "cluster", ec)) {
    auto f = e.path().filename().string();
    if (f.size() > 5 && f.ends_with(".down") && !view.count(f.substr(0, f.size() - 5)))
      std::filesystem::remove(e.path(), ec);
  }
  // A project the cluster no longer has: what runs of it here goes.
  auto all = store.list_projects();
  if (!all) return;
  for (const auto& p : *all) {
    if (!is_cluster_project(p) || view.count(p.name) || cluster_leaving_.count(p.name)) continue;
    log->info("cluster: project={} removed from the cluster, taking it down here", p.name);
    cluster_slots_.erase(p.name);
    cluster_leaving_.insert(p.name);
    asio::co_spawn(io_, cluster_gone(p.name), asio::detached);
  }
}

}  // namespace stack::reconciler
