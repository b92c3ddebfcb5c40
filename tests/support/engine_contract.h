// The engine's start-sequence contract: create, start, abandon and a failure at each step, run
// against the simulated kernel (unit) and the real one (integration, root), through the same
// recording decorators. Both must make the same calls, in the same order, with the same
// outcome, and leave nothing (no process unreaped, no cgroup): so the fakes stay honest.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/container.h"
#include "support/engine_recorder.h"

// Call lists printed whole when a CHECK fails.
template <>
struct doctest::StringMaker<std::vector<std::string>> {
  static doctest::String convert(const std::vector<std::string>& v) {
    std::string out = "{";
    for (const auto& s : v) out += "\n  \"" + s + "\"";
    return (out + "}").c_str();
  }
};

namespace stack::test {

// One world an Engine runs in: the real kernel, or the simulated one.
class EngineWorld {
 public:
  virtual ~EngineWorld() = default;
  virtual engine::Engine& engine() = 0;
  virtual CallLog& log() = 0;
  virtual const std::vector<pid_t>& launched() = 0;
  // The cgroup driver, unrecorded: to look at what is left.
  virtual engine::CgroupDriver& observed_cgroups() = 0;
  // A container running ARGV; its directory and cgroup show as DIR and CG in the log.
  virtual engine::ContainerSpec spec(const std::string& name, std::vector<std::string> argv) = 0;
  // SPEC's root cannot be built (stack-init answers ERROR at step 3): the text it gives.
  virtual std::string break_setup(engine::ContainerSpec& spec) = 0;
  // SPEC's command does not exist in its image (ERROR at step 5).
  virtual void missing_command(engine::ContainerSpec& spec) = 0;
  // PID exists, running or a zombie not reaped yet (checked against its start time).
  virtual bool process_exists(pid_t pid) = 0;
  // Stops a started container and removes what it made.
  virtual void dispose(const engine::ContainerProcess& p, const engine::ContainerSpec& spec) = 0;
};

// What Engine::create calls for a container of its own network namespace.
inline std::vector<std::string> expected_create_calls() {
  return {"mkdir DIR/rootfs 0755",
          "mkdir DIR/upper 0755",
          "mkdir DIR/work 0755",
          "write DIR/hostname N bytes",
          "write DIR/hosts N bytes",
          "unlink DIR/exit",
          "cgroup.pids CG",
          "cgroup.remove CG",
          "cgroup.create CG",
          "opendir DIR",
          "clone flags=PID|NS|UTS|IPC|NET",
          "pidfd_open PID",
          "start_time PID",
          "send config N bytes",
          "cgroup.attach CG PID",
          "expect READY",
          "netns_open PID"};
}

// The calls that undo a created container: its init killed and reaped, its cgroup removed.
inline const std::vector<std::string> kDiscarded = {"kill PID pidfd", "reap PID",
                                                    "cgroup.remove CG"};

inline std::vector<std::string> plus(std::vector<std::string> a,
                                     const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// expected_create_calls() up to LAST, included.
inline std::vector<std::string> create_calls_upto(const std::string& last) {
  auto all = expected_create_calls();
  auto end = std::find(all.begin(), all.end(), last);
  REQUIRE(end != all.end());
  return {all.begin(), end + 1};
}

// Nothing left of SPEC's container: every init reaped, the cgroup gone.
inline void check_nothing_left(EngineWorld& w, const engine::ContainerSpec& spec) {
  for (pid_t pid : w.launched()) CHECK_MESSAGE(!w.process_exists(pid), "process ", pid, " left");
  CHECK_MESSAGE(!w.observed_cgroups().pids(spec.cgroup), "cgroup ", spec.cgroup, " left");
}

inline std::string error_of(const Result<engine::Created>& r) {
  return r ? std::string("(created)") : r.error().message;
}

inline void contract_create_then_start(EngineWorld& w) {
  auto s = w.spec("two-phase", {"sleep", "60"});
  auto c = w.engine().create(s);
  REQUIRE_MESSAGE(c, error_of(c));
  CHECK(w.log().normalised() == expected_create_calls());
  REQUIRE(w.launched().size() == 1);
  pid_t init = w.launched().front();
  CHECK(c->pid() == init);
  CHECK(c->netns_fd() >= 0);
  CHECK(c->pidfd() >= 0);
  // Created: the init alone in its cgroup, the service not forked yet.
  CHECK(w.process_exists(init));
  CHECK(w.observed_cgroups().pids(s.cgroup).value() == std::vector<pid_t>{init});

  size_t mark = w.log().calls.size();
  auto p = w.engine().start(std::move(*c));
  REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
  CHECK(w.log().since(mark) == std::vector<std::string>{"send GO", "expect STARTED"});
  CHECK(p->pid == init);
  CHECK(p->start_time > 0);
  CHECK(p->started_at > 0);
  // Started: the service runs beside its init, in the same cgroup.
  CHECK(w.observed_cgroups().pids(s.cgroup).value().size() == 2);
  w.dispose(*p, s);
}

inline void contract_abandon(EngineWorld& w) {
  auto s = w.spec("abandoned", {"sleep", "60"});
  auto c = w.engine().create(s);
  REQUIRE_MESSAGE(c, error_of(c));
  size_t mark = w.log().calls.size();
  w.engine().abandon(std::move(*c));
  CHECK(w.log().since(mark) == kDiscarded);
  check_nothing_left(w, s);
}

inline void contract_destructor(EngineWorld& w) {
  auto s = w.spec("dropped", {"sleep", "60"});
  size_t mark = 0;
  {
    auto c = w.engine().create(s);
    REQUIRE_MESSAGE(c, error_of(c));
    auto moved = std::move(*c);  // the moved-from one holds nothing
    mark = w.log().calls.size();
  }
  CHECK(w.log().since(mark) == kDiscarded);
  check_nothing_left(w, s);
}

// A failure at one call of create: the error's context, and the calls that undo it.
struct CreateFailure {
  std::string name;
  std::string kind;  // the call that fails ("" : the init exits before READY)
  int nth;
  std::string error;                // what the error says
  std::vector<std::string> ending;  // the last calls
};

inline std::vector<CreateFailure> create_failures() {
  auto upto = create_calls_upto;
  return {
      {"cgroup create", "cgroup.create", 1, "cgroup.create: injected failure",
       upto("cgroup.create CG")},
      {"directory open", "opendir", 1, "opendir: injected failure",
       plus(upto("opendir DIR"), {"cgroup.remove CG"})},
      {"clone", "clone", 1, "create namespaces: clone: injected failure",
       plus(upto("clone flags=PID|NS|UTS|IPC|NET"), {"cgroup.remove CG"})},
      {"pidfd", "pidfd_open", 1, "create namespaces: pidfd_open: injected failure",
       plus(upto("pidfd_open PID"), {"kill PID", "reap PID", "cgroup.remove CG"})},
      {"send config", "send", 1, "set up container: send: injected failure",
       plus(upto("send config N bytes"), kDiscarded)},
      {"cgroup attach", "cgroup.attach", 1, "cgroup.attach: injected failure",
       plus(upto("cgroup.attach CG PID"), kDiscarded)},
      {"no answer", "expect", 1, "set up container: expect: injected failure",
       plus(upto("expect READY"), kDiscarded)},
      {"READY missing", "", 1, "set up container: container init exited during setup",
       plus(upto("expect READY"), kDiscarded)},
      {"netns", "netns_open", 1, "set up container: netns_open: injected failure",
       plus(expected_create_calls(), kDiscarded)},
  };
}

inline void contract_create_failure(EngineWorld& w, const CreateFailure& f) {
  CAPTURE(f.name);
  auto s = w.spec("fail", {"sleep", "60"});
  if (f.kind.empty())
    w.log().init_exits_before_expect = f.nth;
  else
    w.log().fail_on[f.kind] = f.nth;
  auto c = w.engine().create(s);
  REQUIRE(!c);
  CHECK(c.error().message == f.error);
  CHECK(w.log().normalised() == f.ending);
  check_nothing_left(w, s);
}

inline void contract_setup_error(EngineWorld& w) {
  auto s = w.spec("broken", {"sleep", "60"});
  std::string why = w.break_setup(s);
  auto c = w.engine().create(s);
  REQUIRE(!c);
  CHECK(c.error().message == "set up container: " + why);
  CHECK(w.log().normalised() == plus(create_calls_upto("expect READY"), kDiscarded));
  check_nothing_left(w, s);
}

// A failure once created, in start: the init killed and reaped, the cgroup removed.
struct StartFailure {
  std::string name;
  std::string kind;  // the call that fails ("": the init exits before STARTED)
  int nth;
  std::string error;
  std::vector<std::string> calls;  // start's
};

inline std::vector<StartFailure> start_failures() {
  return {
      {"send GO", "send", 2, "start service: send: injected failure",
       plus({"send GO"}, kDiscarded)},
      {"no answer", "expect", 2, "start service: expect: injected failure",
       plus({"send GO", "expect STARTED"}, kDiscarded)},
      {"STARTED missing", "", 2, "start service: container init exited during setup",
       plus({"send GO", "expect STARTED"}, kDiscarded)},
  };
}

inline void contract_start_failure(EngineWorld& w, const StartFailure& f) {
  CAPTURE(f.name);
  auto s = w.spec("fail", {"sleep", "60"});
  if (f.kind.empty())
    w.log().init_exits_before_expect = f.nth;
  else
    w.log().fail_on[f.kind] = f.nth;
  auto c = w.engine().create(s);
  REQUIRE_MESSAGE(c, error_of(c));
  size_t mark = w.log().calls.size();
  auto p = w.engine().start(std::move(*c));
  REQUIRE(!p);
  CHECK(p.error().message == f.error);
  CHECK(w.log().since(mark) == f.calls);
  check_nothing_left(w, s);
}

// The service cannot be exec'd: stack-init's ERROR, word for word.
inline void contract_start_error(EngineWorld& w) {
  auto s = w.spec("nocmd", {"sleep", "60"});
  w.missing_command(s);
  auto c = w.engine().create(s);
  REQUIRE_MESSAGE(c, error_of(c));
  size_t mark = w.log().calls.size();
  auto p = w.engine().start(std::move(*c));
  REQUIRE(!p);
  CHECK(p.error().message == "start service: exec \"no-such-program\": No such file or directory");
  CHECK(w.log().since(mark) == plus({"send GO", "expect STARTED"}, kDiscarded));
  check_nothing_left(w, s);
}

}  // namespace stack::test
