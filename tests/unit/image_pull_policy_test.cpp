// pull_policy as the planner sees it: (policy, present, last pulled, now) -> what to do.
#include <doctest/doctest.h>

#include "planner/pull_policy.h"

using namespace stack;
using planner::PullAction;
using namespace std::chrono_literals;

TEST_CASE("pull_policy decides from the policy, presence and the last pull") {
  const planner::SystemTime now = planner::SystemTime() + 1000h;
  const std::optional<planner::SystemTime> never;
  struct Case {
    const char* policy;
    bool present;
    std::optional<planner::SystemTime> last;
    PullAction want;
  };
  const Case cases[] = {
      {"always", true, now, PullAction::pull},
      {"refresh", true, now, PullAction::pull},
      {"missing", true, never, PullAction::use_local},
      {"missing", false, never, PullAction::pull},
      {"if_not_present", false, never, PullAction::pull},
      {"", true, never, PullAction::use_local},
      {"never", true, never, PullAction::use_local},
      {"never", false, never, PullAction::fail_missing},
      {"build", true, now, PullAction::build},
      {"daily", false, never, PullAction::pull},
      {"daily", true, never, PullAction::pull},  // imported, never pulled: once
      {"daily", true, now - 23h, PullAction::use_local},
      {"daily", true, now - 24h, PullAction::pull},
      {"weekly", true, now - 24h * 6, PullAction::use_local},
      {"weekly", true, now - 24h * 7, PullAction::pull},
      {"every_12h", true, now - 11h, PullAction::use_local},
      {"every_12h", true, now - 12h, PullAction::pull},
      {"every_1d12h", true, now - 30h, PullAction::use_local},
      {"every_1d12h", true, now - 36h, PullAction::pull},
      {"every_90s", true, now - 100s, PullAction::pull},
  };
  for (const auto& c : cases) {
    CAPTURE(c.policy);
    CAPTURE(c.present);
    auto r = planner::pull_action(c.policy, c.present, c.last, now);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(*r == c.want);
  }
  for (const char* bad : {"sometimes", "every_", "every_5", "every_h", "every_0s", "every_1y"}) {
    CAPTURE(bad);
    CHECK(!planner::pull_action(bad, true, never, now));
  }
  CHECK(planner::parse_pull_interval("1w2d3h4m5s").value() ==
        std::chrono::seconds(604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5));
}
