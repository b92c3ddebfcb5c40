// `image import`, `load` and `save` on the daemon's side: the tar travels in the connection,
// never as a host path. The daemon is root: a path a request named was opened with root's
// rights (any member of the socket's group read /etc/shadow as an "image", or wrote a save to
// /etc/cron.d); the CLI now opens the user's file with the user's rights and streams it, as
// docker does. Private to src/api.
//
//   POST /v1/images/import  {"reference": R, "size": N, "max_bytes": M}   Upgrade: stack-image
//   POST /v1/images/load    {"size": N, "max_bytes": M}                    Upgrade: stack-image
//   POST /v1/images/save    {"references": [R...]}                         Upgrade: stack-image
//
// After `101 Switching Protocols` both ends speak exec_stream.h's frames. import and load: the
// client sends the tar in stdin frames, then stdin-eof ("size": its length when known, checked
// against the limit and the free space before the first byte; 0 or absent: not known). save:
// the daemon sends the tar in stdout frames. The daemon's progress comes as stderr frames, one
// JSON line each ({"progress": {"phase", "bytes", "total"}}; none while the client sends: it
// shows its own); an import's or load's result as one stdout frame ({"imported": "NAME ID",
// "image": {...}} or {"loaded": [...]}); then an exit frame (0), or an error frame. A request
// with "path" is refused before the upgrade, whatever the path.
#pragma once

#include <nlohmann/json.hpp>

#include "api/request.h"
#include "api/routes.h"

namespace stack::api {

inline constexpr std::string_view kImageUpgrade = "stack-image";

// True for POST /v1/images/{import,load,save}.
[[nodiscard]] bool is_image_transfer(const Request& request, const Target& target);
reconciler::awaitable<Reply> image_transfer(reconciler::Daemon& daemon, const Request& request,
                                            const Target& target, const nlohmann::json& body);

}  // namespace stack::api
