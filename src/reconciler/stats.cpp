// `stack stats`: each running container's counters, read from its cgroups (CPU, memory and its
// limit, block I/O, PIDs) and from its network namespace (through its init's /proc entry).
// Reads only; a container that ends while being read is left out, not an error.
#include <time.h>

#include <fstream>

#include "engine/cgroup.h"
#include "engine/container.h"
#include "engine/net_counters.h"
#include "reconciler/controller.h"
#include "state/store.h"

namespace stack::reconciler {

namespace {

int64_t host_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t kib = 0;
  while (in >> key >> kib >> unit)
    if (key == "MemTotal:") return kib * 1024;
  return 0;
}

}  // namespace

Result<std::vector<ContainerStats>> Controller::stats(const std::string& project,
                                                      const std::vector<std::string>& services) {
  auto records = store_->list_containers(project);
  if (!records) return fail(records.error());
  std::vector<ContainerStats> out;
  int64_t host_mem = host_memory();
  for (auto& rec : *records) {
    if (auto r = refresh(rec); !r) return fail(r.error());
    if (rec.state != state::ContainerState::kRunning || rec.pid == 0) continue;
    if (!services.empty() &&
        std::find(services.begin(), services.end(), rec.service) == services.end())
      continue;
    ContainerStats s;
    s.name = rec.name;
    s.service = rec.service;
    auto spec = located(rec);
    auto cg = engine_->cgroups().stats(spec.cgroup);
    if (!cg) continue;  // ended since refresh(): its cgroup is gone
    engine::ContainerProcess proc{rec.pid, rec.pid_start_time, 0};
    auto net = engine::net_counters(rec.pid);
    // Checked after reading: the counters are of the container's init, not of a process
    // that reused its PID.
    if (!net || !engine::is_alive(proc)) continue;
    s.cpu_ns = cg->cpu_usage_ns;
    s.memory_bytes = cg->memory_bytes;
    s.memory_limit = cg->memory_limit > 0 && (host_mem == 0 || cg->memory_limit < host_mem)
                         ? cg->memory_limit
                         : host_mem;  // as docker: no limit shows the host's memory
    s.pids = cg->pids;
    s.block_read = cg->block_read_bytes;
    s.block_write = cg->block_write_bytes;
    s.net_rx = net->rx_bytes;
    s.net_tx = net->tx_bytes;
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    s.read_ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace stack::reconciler
