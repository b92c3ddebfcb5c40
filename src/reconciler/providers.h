// Provider services (compose's `provider:`, docs/extension.md of docker compose): the binary
// found as compose finds it, run as `TYPE compose --project-name P up|down --opt=v... SERVICE`,
// its stdout read as JSON lines; and the variables its `up` set, injected into the services
// that depend on it. Blocking: run_provider runs on the worker pool, never on the loop.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/provider.h"
#include "spec/stack.h"

namespace stack::state {
class Store;
}

namespace stack::reconciler {

// SERVICE's provider as the plan carries it (environment left empty: the caller's).
[[nodiscard]] model::ProviderConfig provider_config(const spec::Stack& stack,
                                                    const spec::Service& service);

struct ProviderOutput {
  std::map<std::string, std::string> env;      // setenv: injected as <SERVICE>_<KEY>
  std::map<std::string, std::string> raw_env;  // rawsetenv: injected as is
};
struct ProviderLines {
  std::function<void(const std::string&)> info;   // progress for the user
  std::function<void(const std::string&)> debug;  // the daemon's log
};

// The path of provider TYPE: a path (relative to the project's directory) when it holds a '/';
// else docker's CLI plugin `docker-TYPE` where docker keeps them, else TYPE on PATH (the
// project environment's, as compose's exec.LookPath), else `docker-TYPE` on PATH.
[[nodiscard]] Result<std::string> find_provider(const model::ProviderConfig& config);

// The argv of COMMAND ("up", "down"), as compose builds it.
[[nodiscard]] std::vector<std::string> provider_argv(const std::string& path,
                                                     const std::string& project,
                                                     const std::string& command,
                                                     const std::string& service,
                                                     const model::ProviderConfig& config);

// Parses one line of the provider's stdout into OUT (info and debug go to LINES). An error
// line, a line that is not a JSON object with a known type, or a setenv without '=' fails
// with the message compose gives.
[[nodiscard]] Result<void> provider_line(const std::string& line, ProviderOutput& out,
                                         const ProviderLines& lines);

// Runs it and waits for it: the error names the service and carries the provider's error
// line, or its exit status and the end of what it wrote on stderr.
[[nodiscard]] Result<ProviderOutput> run_provider(const std::string& project,
                                                  const std::string& command,
                                                  const std::string& service,
                                                  const model::ProviderConfig& config,
                                                  const ProviderLines& lines);

// STACK's services that depend on a provider whose `up` is recorded get its variables in their
// environment: setenv KEY as <SERVICE>_<KEY> (the provider's service name upper-cased), rawsetenv
// KEY as is; both replace what the file says, as compose does.
[[nodiscard]] Result<void> inject_provider_env(spec::Stack& stack, state::Store& store);

}  // namespace stack::reconciler
