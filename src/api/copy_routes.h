// `stack cp` on the daemon's side: POST /v1/projects/P/cp, a tar stream into or out of a
// running container's file system over an upgraded connection (Upgrade: stack-cp; frames as
// exec_stream.h: the archive in stdin frames then stdin-eof, or out in stdout frames; an exit
// frame (0) or an error frame ends it). Private to src/api.
//
//   {"service": S, "index": 1, "direction": "out", "path": "/etc/hosts"}
//   {"service": S, "index": 1, "direction": "in", "path": "/dest", "contents": bool,
//    "archive": bool, "parents": bool}
//
// "contents": the archive holds a directory's contents (`dir/.` or `-`): "path" is a directory,
// made when missing ("parents": with its missing parents, as `watch` syncs). "archive": owners
// from the archive (`cp -a`); else the service's user.
#pragma once

#include <nlohmann/json.hpp>

#include "api/request.h"
#include "api/routes.h"

namespace stack::api {

inline constexpr std::string_view kCopyUpgrade = "stack-cp";

[[nodiscard]] bool is_copy_route(const Target& target);
reconciler::awaitable<Reply> copy_route(reconciler::Daemon& daemon, const Request& request,
                                        const Target& target, const nlohmann::json& body);

}  // namespace stack::api
