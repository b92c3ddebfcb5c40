// The executor against a fake step runner: the DAG's order, the parallelism bound, retries on
// their own backoff, a terminal failure skipping only what depends on it.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <map>

#include "reconciler/async.h"
#include "reconciler/executor.h"

using namespace stack;
using namespace stack::reconciler;
using namespace std::chrono_literals;

namespace {

// Records the steps it runs, in order; each takes a moment (so several overlap), and the
// outcomes scripted per object are returned in turn.
struct FakeRunner final : StepRunner {
  std::vector<std::string> started;
  std::map<std::string, std::vector<Outcome>> script;
  std::map<std::string, std::vector<std::chrono::steady_clock::time_point>> times;
  size_t running = 0, max_running = 0;

  awaitable<Outcome> run(const planner::Node& node, PassId pass) override {
    std::string what = std::string(planner::step_kind(node.step)) + " " + planner::step_object(node.step);
    started.push_back(what);
    times[what].push_back(std::chrono::steady_clock::now());
    CHECK(pass.str() == "p7");
    running++;
    max_running = std::max(max_running, running);
    co_await sleep_for(5ms);
    running--;
    auto& s = script[what];
    if (s.empty()) co_return Done{};
    Outcome o = s.front();
    s.erase(s.begin());
    co_return o;
  }
};

awaitable<void> run_into(const planner::Plan* plan, FakeRunner* runner, ExecOptions options,
                         ExecResult* result) {
  *result = co_await execute(*plan, *runner, std::move(options), PassId{7});
}

ExecResult run_plan(const planner::Plan& plan, FakeRunner& runner, ExecOptions options = {}) {
  asio::io_context io;
  ExecResult result;
  asio::co_spawn(io, run_into(&plan, &runner, std::move(options), &result), asio::detached);
  io.run();
  return result;
}

planner::Plan chain_and_fan() {
  // net -> (create a -> start a), (create b -> start b); start c after both starts.
  planner::Plan p;
  p.nodes.push_back({planner::EnsureNetwork{"n", nullptr}, "new", "", {}});
  p.nodes.push_back({planner::CreateContainer{"a", "a", 1, nullptr}, "new", "a", {0}});
  p.nodes.push_back({planner::StartContainer{"a"}, "new", "a", {1}});
  p.nodes.push_back({planner::CreateContainer{"b", "b", 1, nullptr}, "new", "b", {0}});
  p.nodes.push_back({planner::StartContainer{"b"}, "new", "b", {3}});
  p.nodes.push_back({planner::StartContainer{"c"}, "new", "c", {2, 4}});
  return p;
}

size_t position(const std::vector<std::string>& v, const std::string& what) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), what) - v.begin());
}

}  // namespace

TEST_CASE("executor: every step after what it follows, independent ones side by side") {
  FakeRunner runner;
  auto plan = chain_and_fan();
  auto result = run_plan(plan, runner);
  CHECK(result.ok());
  REQUIRE(runner.started.size() == 6);
  CHECK(runner.started[0] == "network n");
  CHECK(position(runner.started, "start a") > position(runner.started, "create a"));
  CHECK(position(runner.started, "start c") == 5);
  CHECK(runner.max_running == 2);  // a and b overlapped
}

TEST_CASE("executor: at most `parallelism` steps at once") {
  planner::Plan p;
  for (int i = 0; i < 10; i++) p.nodes.push_back({planner::StartContainer{"s" + std::to_string(i)}, "", "", {}});
  FakeRunner runner;
  ExecOptions o;
  o.parallelism = 3;
  CHECK(run_plan(p, runner, o).ok());
  CHECK(runner.max_running == 3);
}

TEST_CASE("executor: a step asking to be retried runs again after its backoff, then succeeds") {
  FakeRunner runner;
  runner.script["create b"] = {RetryAfter{20ms, Error{"busy"}}, RetryAfter{20ms, Error{"busy"}}};
  auto result = run_plan(chain_and_fan(), runner);
  CHECK(result.ok());
  CHECK(result.nodes[3].attempts == 3);
  auto& t = runner.times["create b"];
  REQUIRE(t.size() == 3);
  CHECK(t[1] - t[0] >= 20ms);  // first retry: the delay asked for
  CHECK(t[2] - t[1] >= 40ms);  // then doubled
}

TEST_CASE("executor: retries end in failure after max_attempts") {
  FakeRunner runner;
  runner.script["create b"] = std::vector<Outcome>(5, RetryAfter{1ms, Error{"busy"}});
  ExecOptions o;
  o.max_attempts = 3;
  auto plan = chain_and_fan();
  auto result = run_plan(plan, runner, o);
  CHECK(!result.ok());
  CHECK(result.nodes[3].state == NodeResult::State::kFailed);
  CHECK(result.nodes[3].attempts == 3);
  CHECK(result.error(plan).message == "create b: after 3 attempts: busy");
}

TEST_CASE("executor: a terminal failure skips what depends on it, the rest goes on") {
  FakeRunner runner;
  runner.script["create a"] = {Terminal{Error{"no space left on device"}}};
  auto plan = chain_and_fan();
  auto result = run_plan(plan, runner);
  using S = NodeResult::State;
  CHECK(result.nodes[1].state == S::kFailed);
  CHECK(result.nodes[2].state == S::kSkipped);  // start a
  CHECK(result.nodes[3].state == S::kDone);     // b's branch is independent
  CHECK(result.nodes[4].state == S::kDone);
  CHECK(result.nodes[5].state == S::kSkipped);  // c needs a
  CHECK(result.nodes[5].error.message == "not done: > start a (new) was not done");
  CHECK(position(runner.started, "start a") == runner.started.size());  // never run
  CHECK(result.error(plan).message == "create a: no space left on device");
}

TEST_CASE("executor: cancelled, it starts nothing more") {
  FakeRunner runner;
  int calls = 0;
  ExecOptions o;
  o.cancelled = [&] { return ++calls > 2; };  // after the network and the first create
  auto result = run_plan(chain_and_fan(), runner, o);
  CHECK(!result.ok());
  CHECK(runner.started.size() == 2);
}

TEST_CASE("retry delays double from the asked minimum up to the cap") {
  CHECK(retry_delay(0ms, 1, 1000ms) == 100ms);
  CHECK(retry_delay(300ms, 1, 1000ms) == 300ms);
  CHECK(retry_delay(300ms, 2, 1000ms) == 600ms);
  CHECK(retry_delay(300ms, 5, 1000ms) == 1000ms);
}
