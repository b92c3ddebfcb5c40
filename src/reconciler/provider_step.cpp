// The plan's RunProvider step: a provider service's `up` or `down` (providers.h) run on the
// worker pool while the loop goes on. Its info lines reach the client as they come; a
// successful `up` is recorded (its variables, for the dependents; its options, for `down`).
#include <chrono>

#include "common/log.h"
#include "reconciler/async.h"
#include "reconciler/daemon.h"
#include "reconciler/providers.h"
#include "reconciler/steps.h"
#include "state/store.h"

#include <spdlog/spdlog.h>

namespace stack::reconciler {

namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

awaitable<Outcome> DaemonSteps::run_provider(const planner::RunProvider& s, PassId pass) {
  auto t0 = Clock::now();
  if (!s.config) co_return Terminal{Error{"service \"" + s.service + "\": no provider configuration"}};
  auto log = log::get("reconciler");
  auto ex = co_await asio::this_coro::executor;
  // Called on a worker: the line is handed to the loop, which owns the client's stream.
  ProviderLines lines;
  lines.info = [ex, report = progress_, object = s.service, t0](const std::string& line) {
    asio::post(ex, [report, object, line, t0] { report(object, line, since(t0)); });
  };
  lines.debug = [log, service = s.service, pass](const std::string& line) {
    log->debug("provider service={} pass={}: {}", service, pass.str(), line);
  };
  auto work = [project = project_, command = s.command, service = s.service, config = s.config,
               lines]() { return reconciler::run_provider(project, command, service, *config, lines); };
  auto ran = co_await on_pool(*daemon_.pool_, std::move(work));
  if (!ran) {
    log->error("provider service={} command={} pass={}: {}", s.service, s.command, pass.str(),
               ran.error().message);
    co_return Terminal{ran.error()};
  }
  auto& store = daemon_.controller().store();
  if (s.command == "up") {
    state::ProviderRecord rec{project_, s.service, *s.config, ran->env, ran->raw_env, unix_ms()};
    if (auto r = store.put_provider(rec); !r) co_return Terminal{r.error()};
  } else if (auto r = store.remove_provider(project_, s.service); !r) {
    co_return Terminal{r.error()};
  }
  log->info("provider service={} command={} type={} variables={} pass={}", s.service, s.command,
            s.config->type, ran->env.size() + ran->raw_env.size(), pass.str());
  daemon_.events_.publish({0, "provider", project_, s.service, "",
                           {{"action", s.command}, {"type", s.config->type}, {"pass", pass.str()}}});
  progress_(s.service, s.command == "up" ? "Provider created" : "Provider removed", since(t0));
  co_return Done{};
}

}  // namespace stack::reconciler
