// Restart policies as compose defines them (no, always, on-failure[:max], unless-stopped) and
// stack's backoff: the first restart after 100 ms, doubling, capped at one minute, and back to
// 100 ms once a run has lasted 10 s. Pure: the supervisor supplies the facts and the clock.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/result.h"

namespace stack::reconciler {

struct RestartPolicy {
  enum class Kind { No, Always, OnFailure, UnlessStopped };
  Kind kind = Kind::No;
  int max_retries = 0;  // on-failure:N, any:N (deploy.restart_policy max_attempts); 0 = unlimited
  // deploy.restart_policy: a fixed delay between restarts instead of the backoff, and how long
  // a run must last to count as a success that resets the backoff (kResetAfter otherwise).
  std::optional<std::chrono::milliseconds> delay;
  std::optional<std::chrono::milliseconds> window;

  [[nodiscard]] static Result<RestartPolicy> parse(std::string_view text);
  // Whether the policy starts a container again that exited by itself with EXIT_CODE after
  // RESTARTS restarts. When it does not, the exited container is done: a reached state.
  [[nodiscard]] bool restarts_after(int exit_code, int restarts) const;
  [[nodiscard]] std::string str() const;
};

inline constexpr std::chrono::milliseconds kFirstBackoff{100};
inline constexpr std::chrono::milliseconds kMaxBackoff{60'000};
inline constexpr std::chrono::milliseconds kResetAfter{10'000};

struct ExitFacts {
  int exit_code = 0;
  bool stopped_by_user = false;  // `stack stop`/`down`: never restarted
  std::chrono::milliseconds ran_for{0};
  int restarts_so_far = 0;       // restarts in the current streak
};

// The delay before restarting, or nullopt when the policy says the container stays down.
// STREAK is the number of consecutive quick exits (it resets after a run of kResetAfter).
[[nodiscard]] std::optional<std::chrono::milliseconds> restart_delay(const RestartPolicy& policy,
                                                                     const ExitFacts& facts,
                                                                     int& streak);

}  // namespace stack::reconciler
