// A container's lifecycle as the state store records it: an enum and the one table of the
// transitions it may make. Pure.
#pragma once

#include <optional>
#include <string_view>

#include "common/result.h"

namespace stack::state {

enum class ContainerState { kCreated, kRunning, kRestarting, kExited, kDead };

[[nodiscard]] const char* state_name(ContainerState s);  // "created", "running", ...
[[nodiscard]] std::optional<ContainerState> parse_state(std::string_view name);

// The transition table: created → running (started); running → exited (ended, or stopped) or
// restarting (ended, its policy will start it again); restarting → running or exited (stopped
// in its backoff, or its restart failed); exited → running (started again) or restarting (a
// daemon found it ended and its policy restarts it). A dead container (its removal failed) goes
// nowhere.
[[nodiscard]] bool can_transition(ContainerState from, ContainerState to);
// "cannot <VERB> a <from> container" unless FROM may become TO.
[[nodiscard]] Result<void> check_transition(ContainerState from, ContainerState to,
                                            std::string_view verb);

// Running, or waiting out a restart backoff: supervised, not to be started again.
[[nodiscard]] inline bool is_up(ContainerState s) {
  return s == ContainerState::kRunning || s == ContainerState::kRestarting;
}

}  // namespace stack::state
