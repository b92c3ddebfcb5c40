// GET /v1/projects/P/stats: raw counters, one object per running container. The CLI takes two
// samples and computes the CPU % from cpu_ns over read_ns, as docker does from its two reads.
#include "api/stats_routes.h"

#include "reconciler/daemon.h"

namespace stack::api {

using nlohmann::json;

Reply stats_reply(reconciler::Daemon& daemon, const std::string& project, const Target& target) {
  auto stats = daemon.controller().stats(project, target.all("service"));
  if (!stats) return Reply{500, {{"error", stats.error().message}}, {}};
  json arr = json::array();
  for (const auto& s : *stats)
    arr.push_back({{"name", s.name},
                   {"service", s.service},
                   {"cpu_ns", s.cpu_ns},
                   {"read_ns", s.read_ns},
                   {"memory_bytes", s.memory_bytes},
                   {"memory_limit", s.memory_limit},
                   {"pids", s.pids},
                   {"net_rx", s.net_rx},
                   {"net_tx", s.net_tx},
                   {"block_read", s.block_read},
                   {"block_write", s.block_write}});
  return Reply{200, arr, {}};
}

}  // namespace stack::api
