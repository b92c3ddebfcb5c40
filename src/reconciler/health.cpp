#include "reconciler/health.h"

namespace stack::reconciler {

const char* health_name(Health h) {
  switch (h) {
    case Health::None: return "";
    case Health::Starting: return "starting";
    case Health::Healthy: return "healthy";
    case Health::Unhealthy: return "unhealthy";
  }
  return "";
}

Health HealthState::record(bool ok, std::chrono::milliseconds since_start) {
  if (ok) {
    streak_ = 0;
    status_ = Health::Healthy;
    return status_;
  }
  // Inside the start period a failure only counts once the container has been healthy.
  if (since_start < config_.start_period && status_ == Health::Starting) return status_;
  if (++streak_ >= config_.retries) status_ = Health::Unhealthy;
  return status_;
}

std::chrono::milliseconds HealthState::next_delay(std::chrono::milliseconds since_start) const {
  if (status_ == Health::Starting && since_start < config_.start_period)
    return config_.start_interval;
  return config_.interval;
}

}  // namespace stack::reconciler
