// The executor: runs exactly the DAG a plan is, on the daemon's loop, as many steps at once as
// the plan allows and the bound permits. Each step ends done, retry after a delay (with a
// backoff that grows per attempt) or terminal; a failed step's dependents are skipped, the rest
// of the plan goes on. What a step does is the StepRunner's; every pass has an id that its log
// lines and events carry. Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/result.h"
#include "planner/plan.h"

namespace stack::reconciler {

// One reconcile pass (an `up`, a `down`, a file change, a resync): "p42" in logs and events.
struct PassId {
  uint64_t value = 0;
  [[nodiscard]] std::string str() const { return "p" + std::to_string(value); }
};

struct Done {};
struct RetryAfter {
  std::chrono::milliseconds delay;
  Error why;
};
struct Terminal {
  Error why;
};
using Outcome = std::variant<Done, RetryAfter, Terminal>;

class StepRunner {
 public:
  virtual ~StepRunner() = default;
  virtual boost::asio::awaitable<Outcome> run(const planner::Node& node, PassId pass) = 0;
};

struct ExecOptions {
  size_t parallelism = 8;  // steps running at once
  int max_attempts = 5;    // a step that keeps asking to be retried is terminal after these
  std::chrono::milliseconds max_backoff{30'000};
  // Called as each step ends, with how it ended and how long it took (all attempts).
  std::function<void(size_t node, const Outcome& outcome, std::chrono::milliseconds elapsed)>
      on_finished;
  // Checked before each step starts: when true, the steps not yet started are skipped.
  std::function<bool()> cancelled;
};

struct NodeResult {
  enum class State { kPending, kDone, kFailed, kSkipped };
  State state = State::kPending;
  Error error;  // kFailed: why; kSkipped: which step it depended on failed
  int attempts = 0;
};

struct ExecResult {
  std::vector<NodeResult> nodes;
  [[nodiscard]] bool ok() const;
  // Every failure, one per line: "start demo-web-1: exec \"nope\": No such file or directory".
  [[nodiscard]] Error error(const planner::Plan& plan) const;
};

[[nodiscard]] boost::asio::awaitable<ExecResult> execute(const planner::Plan& plan, StepRunner& runner,
                                                         ExecOptions options, PassId pass);

// The delay before attempt ATTEMPT+1 of a step that asked for MINIMUM: doubling from it.
[[nodiscard]] std::chrono::milliseconds retry_delay(std::chrono::milliseconds minimum, int attempt,
                                                    std::chrono::milliseconds max);

}  // namespace stack::reconciler
