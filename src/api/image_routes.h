// The API's image routes (/v1/images..., /v1/auth): the JSON shapes of images and of pull
// progress are made here, once. Private to src/api; routes.cpp hands these paths over.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>

#include "api/request.h"
#include "common/registry_credentials.h"
#include "api/routes.h"

namespace stack::fs {
struct Image;
}

namespace stack::api {

// The registry credentials a client's `up`, `build` or `run` carries ({"registry_auth":
// {"REGISTRY": {"username", "password"} or {"identity_token"}}}): what that request's pulls
// use, and nothing else (reconciler/daemon.h). Never null; an error for a malformed field.
[[nodiscard]] Result<std::shared_ptr<const RegistryAuths>> registry_auth_of(
    const nlohmann::json& body);

// An image as the API shows it (`image ls --format json`, inspect, import's result).
[[nodiscard]] nlohmann::json image_json(const fs::Image& image);

// True for the paths image_route answers. The router has checked the method against
// allowed_methods (request.cpp) and parsed BODY.
[[nodiscard]] bool is_image_route(const Target& target);
reconciler::awaitable<Reply> image_route(reconciler::Daemon& daemon, const Request& request,
                                         const Target& target, const nlohmann::json& body);

}  // namespace stack::api
