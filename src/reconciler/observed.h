// What a project is, for the planner: its containers as the kernel has them now (an init that
// ended is recorded as exited, with its code) and its networks as recorded, with whether their
// bridges are still there. Reads the state store and the kernel; refresh() records exits.
#pragma once

#include <string>

#include "common/result.h"
#include "planner/state.h"

namespace stack::reconciler {

class Controller;
class Networking;

[[nodiscard]] Result<planner::ObservedState> observed_state(Controller& controller,
                                                            Networking& networking,
                                                            const std::string& project);

// The networks DESIRED names that another project made (name: in both files): observed as
// they are, with DESIRED's definition, so this project uses them and never makes them again.
[[nodiscard]] Result<void> add_shared_networks(planner::ObservedState& observed,
                                               const planner::DesiredState& desired,
                                               Controller& controller, Networking& networking);

}  // namespace stack::reconciler
