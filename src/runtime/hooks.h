// Running a bundle's hooks (config.json "hooks"): each one a program started with the
// container's state JSON on its stdin, waited for up to its timeout. Host side, as root; no
// knowledge of which phase calls them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/bundle.h"

namespace stack::runtime {

// Runs HOOKS in order; the first that fails (non-zero exit, killed, timed out, not found)
// stops the rest and is the error, named by KIND ("prestart") and its index and path.
[[nodiscard]] Result<void> run_hooks(const std::vector<Hook>& hooks, const char* kind,
                                     const std::string& state_json);
// poststart and poststop: the runtime spec makes a failing one a warning (given to WARN, named
// as run_hooks names it), and the hooks after it still run.
void run_hooks_warning(const std::vector<Hook>& hooks, const char* kind,
                       const std::string& state_json,
                       const std::function<void(const std::string&)>& warn);
// The same inside the namespaces of the process INIT_PIDFD refers to (a created container's
// init): its mount namespace's root is the hook's "/", so each path resolves in the container
// (startContainer). USERNS: the container has a user namespace of its own, joined too.
[[nodiscard]] Result<void> run_hooks_in(int init_pidfd, bool userns, const std::vector<Hook>& hooks,
                                        const char* kind, const std::string& state_json);

}  // namespace stack::runtime
