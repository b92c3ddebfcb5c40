// The API's route for `stack stats` (GET /v1/projects/P/stats?service=S...): the JSON of each
// running container's counters is made here, once. Private to src/api; routes.cpp hands the
// path over.
#pragma once

#include <string>

#include "api/request.h"
#include "api/routes.h"

namespace stack::api {

Reply stats_reply(reconciler::Daemon& daemon, const std::string& project, const Target& target);

}  // namespace stack::api
