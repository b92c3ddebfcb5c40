// The API's image routes (/v1/images..., /v1/auth): the JSON shapes of images and of pull
// progress are made here, once. Private to src/api; routes.cpp hands these paths over.
#pragma once

#include <nlohmann/json.hpp>

#include "api/request.h"
#include "api/routes.h"

namespace stack::api {

// True for the paths image_route answers. The router has checked the method against
// allowed_methods (request.cpp) and parsed BODY.
[[nodiscard]] bool is_image_route(const Target& target);
reconciler::awaitable<Reply> image_route(reconciler::Daemon& daemon, const Request& request,
                                         const Target& target, const nlohmann::json& body);

}  // namespace stack::api
