// The API's routes of the compose verbs that act on a project's running containers
// (/v1/projects/P/kill, pause, unpause, top, wait): their JSON shapes are made here, once. Private to src/api;
// routes.cpp hands these paths over.
#pragma once

#include <nlohmann/json.hpp>

#include "api/request.h"
#include "api/routes.h"

namespace stack::api {

// True for the paths verb_route answers; the router has checked the method (request.cpp).
[[nodiscard]] bool is_verb_route(const Target& target);
reconciler::awaitable<Reply> verb_route(reconciler::Daemon& daemon, const Request& request,
                                        const Target& target, const nlohmann::json& body);

}  // namespace stack::api
