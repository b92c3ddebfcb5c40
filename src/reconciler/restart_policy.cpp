#include "reconciler/restart_policy.h"

#include <charconv>

namespace stack::reconciler {

Result<RestartPolicy> RestartPolicy::parse(std::string_view text) {
  RestartPolicy p;
  if (text.empty() || text == "no" || text == "false") return p;
  if (text == "always") p.kind = Kind::Always;
  else if (text == "unless-stopped") p.kind = Kind::UnlessStopped;
  else if (text.substr(0, 10) == "on-failure") {
    p.kind = Kind::OnFailure;
    if (text.size() > 10) {
      auto n = text.substr(11);
      auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), p.max_retries);
      if (text[10] != ':' || ec != std::errc() || ptr != n.data() + n.size() || p.max_retries < 0)
        return fail("invalid restart policy \"" + std::string(text) + "\"");
    }
  } else {
    return fail("invalid restart policy \"" + std::string(text) +
                "\" (no, always, on-failure[:max] or unless-stopped)");
  }
  return p;
}

std::string RestartPolicy::str() const {
  switch (kind) {
    case Kind::No: return "no";
    case Kind::Always: return "always";
    case Kind::UnlessStopped: return "unless-stopped";
    case Kind::OnFailure:
      return max_retries ? "on-failure:" + std::to_string(max_retries) : "on-failure";
  }
  return "no";
}

bool RestartPolicy::restarts_after(int exit_code, int restarts) const {
  switch (kind) {
    case Kind::No: return false;
    case Kind::Always:
    case Kind::UnlessStopped: return true;
    case Kind::OnFailure: return exit_code != 0 && (max_retries == 0 || restarts < max_retries);
  }
  return false;
}

std::optional<std::chrono::milliseconds> restart_delay(const RestartPolicy& policy,
                                                       const ExitFacts& facts, int& streak) {
  if (facts.stopped_by_user || !policy.restarts_after(facts.exit_code, facts.restarts_so_far))
    return std::nullopt;
  if (facts.ran_for >= kResetAfter) streak = 0;
  auto delay = kFirstBackoff;
  for (int i = 0; i < streak && delay < kMaxBackoff; i++) delay *= 2;
  streak++;
  return std::min(delay, kMaxBackoff);
}

}  // namespace stack::reconciler
