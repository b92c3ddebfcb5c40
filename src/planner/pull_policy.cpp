// pull_action (pull_policy.h): compose's pull policies, pure.
#include "planner/pull_policy.h"

#include <string>

namespace stack::planner {

Result<std::chrono::seconds> parse_pull_interval(std::string_view text) {
  auto bad = [&] {
    return fail("invalid pull_policy interval \"" + std::string(text) +
                "\" (a duration like 12h, 1d or 1w2d)");
  };
  if (text.empty()) return bad();
  int64_t total = 0, number = 0;
  bool digits = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      number = number * 10 + (c - '0');
      if (number > 100'000'000) return bad();
      digits = true;
      continue;
    }
    if (!digits) return bad();
    int64_t unit = c == 'w'   ? 604800
                   : c == 'd' ? 86400
                   : c == 'h' ? 3600
                   : c == 'm' ? 60
                   : c == 's' ? 1
                              : 0;
    if (unit == 0) return bad();
    total += number * unit;
    number = 0;
    digits = false;
  }
  if (digits || total <= 0) return bad();
  return std::chrono::seconds(total);
}

Result<PullAction> pull_action(std::string_view policy, bool present,
                               std::optional<SystemTime> last_pulled, SystemTime now) {
  if (policy == "always" || policy == "refresh") return PullAction::pull;
  if (policy == "never") return present ? PullAction::use_local : PullAction::fail_missing;
  if (policy == "missing" || policy == "if_not_present" || policy.empty())
    return present ? PullAction::use_local : PullAction::pull;
  if (policy == "build") return PullAction::build;
  std::chrono::seconds every{0};
  if (policy == "daily") {
    every = std::chrono::hours(24);
  } else if (policy == "weekly") {
    every = std::chrono::hours(24 * 7);
  } else if (policy.starts_with("every_")) {
    auto d = parse_pull_interval(policy.substr(6));
    if (!d) return fail(d.error());
    every = *d;
  } else {
    return fail("unknown pull_policy \"" + std::string(policy) +
                "\" (always, never, missing, build, daily, weekly or every_<duration>)");
  }
  if (!present || !last_pulled) return PullAction::pull;
  return now - *last_pulled >= every ? PullAction::pull : PullAction::use_local;
}

}  // namespace stack::planner
