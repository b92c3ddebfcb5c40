#include "reconciler/restart_policy.h"

#include <charconv>

namespace stack::reconciler {

Result<RestartPolicy> RestartPolicy::parse(std::string_view text) {
  RestartPolicy p;
  if (text.empty() || text == "no" || text == "false") return p;
  if (text == "always") p.kind = Kind::Always;
  else if (text == "unless-stopped") p.kind = Kind::UnlessStopped;
  else if (text.substr(0, 10) == "on-failure" || text.substr(0, 4) == "any:") {
    // "any:N" is deploy.restart_policy's condition any with max_attempts N.
    size_t word = text[0] == 'a' ? 3 : 10;
    p.kind = word == 3 ? Kind::Always : Kind::OnFailure;
    if (text.size() > word) {
      auto n = text.substr(word + 1);
      auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), p.max_retries);
      if (text[word] != ':' || ec != std::errc() || ptr != n.data() + n.size() ||
          p.max_retries < 0)
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
    case Kind::Always: return max_retries ? "any:" + std::to_string(max_retries) : "always";
    case Kind::UnlessStopped: return "unless-stopped";
    case Kind::OnFailure:
      return max_retries ? "on-failure:" + std::to_string(max_retries) : "on-failure";
  }
  return "no";
}

bool RestartPolicy::restarts_after(int exit_code, int restarts) const {
  switch (kind) {
    case Kind::No: return false;
    case Kind::Always: return max_retries == 0 || restarts < max_retries;
    case Kind::UnlessStopped: return true;
    case Kind::OnFailure: return exit_code != 0 && (max_retries == 0 || restarts < max_retries);
  }
  return false;
}

std::optional<std::chrono::milliseconds> restart_delay(const RestartPolicy& policy,
                                                       const ExitFacts& facts, int& streak) {
  if (facts.stopped_by_user || !policy.restarts_after(facts.exit_code, facts.restarts_so_far))
    return std::nullopt;
  if (facts.ran_for >= policy.window.value_or(kResetAfter)) streak = 0;
  if (policy.delay) {
    streak++;
    return *policy.delay;
  }
  auto delay = kFirstBackoff;
  for (int i = 0; i < streak && delay < kMaxBackoff; i++) delay *= 2;
  streak++;
  return std::min(delay, kMaxBackoff);
}

}  // namespace stack::reconciler
