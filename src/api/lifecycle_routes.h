// The API's routes of `run`, `scale` and `rm` (/v1/run, /v1/projects/P/scale and rm), whose work
// is the daemon's (reconciler/daemon_lifecycle.cpp). Private to src/api; routes.cpp hands these
// paths over. (`create` is POST /v1/up with no_start.)
#pragma once

#include <nlohmann/json.hpp>

#include "api/request.h"
#include "api/routes.h"

namespace stack::api {

// True for the paths lifecycle_route answers; the router has checked the method (request.cpp).
[[nodiscard]] bool is_lifecycle_route(const Target& target);
Reply lifecycle_route(reconciler::Daemon& daemon, const Request& request, const Target& target,
                      const nlohmann::json& body);

}  // namespace stack::api
