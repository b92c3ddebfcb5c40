// What the state store keeps of a created container so it can be started again, stopped and
// entered without its stack file: the engine spec plus how to stop it. Serialised as JSON in
// ContainerRecord::runtime_json. Private to the reconciler.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "common/result.h"
#include "engine/container.h"
#include "reconciler/health.h"

namespace stack::reconciler {

struct RuntimeRecord {
  engine::ContainerSpec spec;
  int stop_signal = 15;
  std::chrono::milliseconds stop_grace{10'000};
  std::string user;  // as written in the stack file, for `exec --user` defaults
  std::string restart = "no";  // the restart policy, as written
  HealthConfig health;         // empty argv: no health check
  bool restart_on_unhealthy = true;  // x-stack: {restart_on_unhealthy: false} opts out
  std::map<std::string, std::string> fields;  // the service's field hashes, for plan reasons
};

std::string to_json(const RuntimeRecord& r);
[[nodiscard]] Result<RuntimeRecord> runtime_from_json(const std::string& text);

}  // namespace stack::reconciler
