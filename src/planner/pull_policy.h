// compose's pull_policy as a pure function the planner can call: (policy, is the image here,
// when was it last pulled, now) -> what to do. No I/O, no clock: the planner's (its PullImage
// steps), with `now` one of its inputs.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "common/result.h"

namespace stack::planner {

enum class PullAction {
  use_local,     // the image here is the one to run
  pull,          // ask the registry (a pull of an unchanged image transfers no layer)
  build,         // `build`: the service's build makes it
  fail_missing,  // `never` and the image is not here
};

using SystemTime = std::chrono::system_clock::time_point;

// POLICY: always, never, missing (if_not_present), build, refresh (= always), daily, weekly,
// every_<duration> (weeks w, days d, hours h, minutes m, seconds s, combined: "every_1d12h").
// LAST_PULLED: when the reference was last pulled (fs::Image::pulled_at), none if never: an image
// that was imported, never pulled, is pulled by daily/weekly/every_ once.
[[nodiscard]] Result<PullAction> pull_action(std::string_view policy, bool present,
                                             std::optional<SystemTime> last_pulled, SystemTime now);

// "1w2d3h4m5s" -> seconds; error for anything else or zero.
[[nodiscard]] Result<std::chrono::seconds> parse_pull_interval(std::string_view text);

}  // namespace stack::planner
