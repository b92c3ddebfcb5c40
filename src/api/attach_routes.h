// `stack attach` on the daemon's side: POST /v1/projects/P/attach (Upgrade: stack-attach,
// frames as exec_stream.h) joins a running service's terminal or stdin and output:
//
//   {"service": S, "index": 1, "stdin": bool, "size": {"cols": C, "rows": R}}
//   (`run -i/-t`: "container": its one-off container instead of the index, and "from_start")
//
//   GET ?service=S&index=N (or &container=C) answers {"container", "tty", "stdin_open"} first.
//
// The service's output comes from its log as the init writes it (partial records as they
// come: a prompt without a newline shows at once), from the moment of attaching (from its
// first line with from_start), in stdout and
// stderr frames; stdin frames go to its terminal (tty: true) or stdin pipe (stdin_open: true),
// resize frames set the terminal's size. The stream ends with an exit frame (the service's
// exit code) when it exits; a client leaving changes nothing for the service. Private to
// src/api.
#pragma once

#include <nlohmann/json.hpp>

#include "api/request.h"
#include "api/routes.h"

namespace stack::api {

inline constexpr std::string_view kAttachUpgrade = "stack-attach";

[[nodiscard]] bool is_attach_route(const Target& target);
reconciler::awaitable<Reply> attach_route(reconciler::Daemon& daemon, const Request& request,
                                          const Target& target, const nlohmann::json& body);

}  // namespace stack::api
