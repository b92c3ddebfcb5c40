// A container's network counters as `stack stats` shows them: its network namespace's
// interfaces (loopback left out), read through its init's /proc/PID/net/dev, which the kernel
// answers for the namespace of PID. Reads only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace stack::engine {

struct NetCounters {
  uint64_t rx_bytes = 0, tx_bytes = 0;
};

// Sums the byte columns of a /proc/net/dev text over its interfaces but "lo".
[[nodiscard]] Result<NetCounters> parse_net_dev(std::string_view text);
[[nodiscard]] Result<NetCounters> net_counters(pid_t pid);

}  // namespace stack::engine
