#include "state/container_state.h"

#include <string>

namespace stack::state {

const char* state_name(ContainerState s) {
  switch (s) {
    case ContainerState::kCreated: return "created";
    case ContainerState::kRunning: return "running";
    case ContainerState::kRestarting: return "restarting";
    case ContainerState::kExited: return "exited";
    case ContainerState::kDead: return "dead";
  }
  return "dead";
}

std::optional<ContainerState> parse_state(std::string_view name) {
  for (auto s : {ContainerState::kCreated, ContainerState::kRunning, ContainerState::kRestarting,
                 ContainerState::kExited, ContainerState::kDead})
    if (name == state_name(s)) return s;
  return std::nullopt;
}

bool can_transition(ContainerState from, ContainerState to) {
  using S = ContainerState;
  switch (from) {
    case S::kCreated: return to == S::kRunning;
    case S::kRunning: return to == S::kExited || to == S::kRestarting;
    case S::kRestarting: return to == S::kRunning || to == S::kExited;
    case S::kExited: return to == S::kRunning || to == S::kRestarting;
    case S::kDead: return false;
  }
  return false;
}

Result<void> check_transition(ContainerState from, ContainerState to, std::string_view verb) {
  if (can_transition(from, to)) return {};
  return fail("cannot " + std::string(verb) + " a " + state_name(from) + " container");
}

}  // namespace stack::state
