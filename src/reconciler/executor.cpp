// Running a plan's DAG: a step starts once every step it follows is done, at most `parallelism`
// at a time; retries wait on timers (never the resync); a failure skips what depends on it.
#include "reconciler/executor.h"

#include <cstdlib>

#include "reconciler/async.h"

namespace stack::reconciler {

namespace {

using std::chrono::milliseconds;
using State = NodeResult::State;

struct Run {
  const planner::Plan* plan;
  StepRunner* runner;
  ExecOptions* options;
  PassId pass;
  ExecResult result;
  std::vector<bool> started;
  size_t running = 0;
  Notifier changed;
};

// One step, with its retries. Parameters, not captures: see async.h.
awaitable<void> run_node(Run* run, size_t index) {
  const auto& node = run->plan->nodes[index];
  auto& result = run->result.nodes[index];
  auto t0 = std::chrono::steady_clock::now();
  Outcome outcome = Done{};
  for (;;) {
    result.attempts++;
    try {
      outcome = co_await run->runner->run(node, run->pass);
    } catch (const std::exception& e) {
      outcome = Terminal{Error{std::string("unexpected failure: ") + e.what()}};
    }
    auto* retry = std::get_if<RetryAfter>(&outcome);
    if (!retry) break;
    if (result.attempts >= run->options->max_attempts) {
      outcome = Terminal{retry->why.wrap("after " + std::to_string(result.attempts) + " attempts")};
      break;
    }
    co_await sleep_for(retry_delay(retry->delay, result.attempts, run->options->max_backoff));
  }
  if (auto* t = std::get_if<Terminal>(&outcome)) {
    result.state = State::kFailed;
    result.error = t->why;
  } else {
    result.state = State::kDone;
  }
  if (run->options->on_finished)
    run->options->on_finished(index, outcome, std::chrono::duration_cast<milliseconds>(
                                                  std::chrono::steady_clock::now() - t0));
  run->running--;
  run->changed.notify();
}

// Pending steps that follow a failed or skipped one are skipped, transitively.
void skip_dependents(Run& run) {
  auto& nodes = run.result.nodes;
  for (size_t i = 0; i < nodes.size(); i++) {  // `after` points backwards: one pass suffices
    if (nodes[i].state != State::kPending || run.started[i]) continue;
    for (size_t a : run.plan->nodes[i].after)
      if (nodes[a].state == State::kFailed || nodes[a].state == State::kSkipped) {
        nodes[i].state = State::kSkipped;
        nodes[i].error = Error{"not done: " + planner::render_step(run.plan->nodes[a]) +
                               (nodes[a].state == State::kFailed ? " failed" : " was not done")};
        break;
      }
  }
}

}  // namespace

bool ExecResult::ok() const {
  for (const auto& n : nodes)
    if (n.state != State::kDone) return false;
  return true;
}

Error ExecResult::error(const planner::Plan& plan) const {
  std::string text;
  for (size_t i = 0; i < nodes.size(); i++)
    if (nodes[i].state == State::kFailed) {
      if (!text.empty()) text += '\n';
      text.append(planner::step_kind(plan.nodes[i].step))
          .append(" ")
          .append(planner::step_object(plan.nodes[i].step))
          .append(": ")
          .append(nodes[i].error.message);
    }
  if (text.empty())
    for (size_t i = 0; i < nodes.size() && text.empty(); i++)
      if (nodes[i].state != State::kDone) text = nodes[i].error.message;
  return Error{text};
}

milliseconds retry_delay(milliseconds minimum, int attempt, milliseconds max) {
  milliseconds d = std::max(minimum, milliseconds(100));
  for (int i = 1; i < attempt && d < max; i++) d *= 2;
  return std::min(d, max);
}

awaitable<ExecResult> execute(const planner::Plan& plan, StepRunner& runner, ExecOptions options,
                              PassId pass) {
  auto ex = co_await asio::this_coro::executor;
  Run run{&plan, &runner, &options, pass, {}, std::vector<bool>(plan.nodes.size()), 0, Notifier(ex)};
  run.result.nodes.resize(plan.nodes.size());
  for (size_t i = 0; i < plan.nodes.size(); i++)
    for (size_t a : plan.nodes[i].after)
      if (a >= i) std::abort();  // a plan's edges point backwards (PlanBuilder): broken invariant
  size_t parallelism = std::max<size_t>(options.parallelism, 1);
  for (;;) {
    skip_dependents(run);
    for (size_t i = 0; i < plan.nodes.size(); i++) {
      auto& r = run.result.nodes[i];
      if (r.state != State::kPending) continue;
      if (run.started[i] || run.running >= parallelism) continue;
      bool ready = true;
      for (size_t a : plan.nodes[i].after) ready &= run.result.nodes[a].state == State::kDone;
      if (!ready) continue;
      if (options.cancelled && options.cancelled()) {
        r.state = State::kSkipped;
        r.error = Error{"cancelled"};
        continue;
      }
      run.started[i] = true;
      run.running++;
      asio::co_spawn(ex, run_node(&run, i), asio::detached);
    }
    skip_dependents(run);  // of what was cancelled just now
    bool settled = true;
    for (const auto& r : run.result.nodes) settled &= r.state != State::kPending;
    if (settled) break;
    if (run.running == 0) continue;  // something became ready without a step finishing
    co_await run.changed.wait();
  }
  co_return std::move(run.result);
}

}  // namespace stack::reconciler
