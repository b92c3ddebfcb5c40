// Health checks as compose defines them: a probe run inside the container every interval
// (every start_interval during start_period), `retries` consecutive failures make it unhealthy,
// one success makes it healthy, failures during start_period do not count. The state machine
// is pure; the supervisor runs the probes.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "model/runtime_record.h"

namespace stack::reconciler {

using model::HealthConfig;

enum class Health { None, Starting, Healthy, Unhealthy };
const char* health_name(Health h);

class HealthState {
 public:
  explicit HealthState(const HealthConfig& config) : config_(config) {}
  // Records a probe's outcome SINCE_START after the container started; returns the status.
  Health record(bool ok, std::chrono::milliseconds since_start);
  // How long to wait before the next probe.
  [[nodiscard]] std::chrono::milliseconds next_delay(std::chrono::milliseconds since_start) const;
  [[nodiscard]] Health status() const { return status_; }
  [[nodiscard]] int failing_streak() const { return streak_; }

 private:
  HealthConfig config_;
  Health status_ = Health::Starting;
  int streak_ = 0;
};

}  // namespace stack::reconciler
