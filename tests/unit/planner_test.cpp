#include <doctest/doctest.h>

#include "planner/plan.h"

using namespace stack::planner;

namespace {

DesiredService svc(std::string name, int replicas = 1, std::vector<std::string> deps = {}) {
  return {name, "hash-" + name, {{"image", "i"}, {"environment", "e1"}}, "sha256:img", replicas,
          std::move(deps)};
}

// The containers a reached state would have: every desired replica running as desired.
std::vector<ObservedContainer> reached(const std::vector<DesiredService>& desired) {
  std::vector<ObservedContainer> out;
  for (const auto& s : desired)
    for (int n = 1; n <= s.replicas; n++)
      out.push_back({"demo-" + s.name + "-" + std::to_string(n), s.name, n, s.config_hash,
                     s.fields, s.image_id, true});
  return out;
}

std::string planned(const std::vector<DesiredService>& d, const std::vector<ObservedContainer>& o,
                    PlanOptions opts = {}) {
  return render(plan("demo", d, o, opts).value());
}

}  // namespace

TEST_CASE("a new stack creates every replica, dependencies first") {
  std::vector<DesiredService> d = {svc("web", 2, {"db"}), svc("db")};
  CHECK(planned(d, {}) ==
        "+ create demo-db-1 (new)\n"
        "+ create demo-web-1 (new)\n"
        "+ create demo-web-2 (new)\n");
}

TEST_CASE("re-planning a reached state is empty") {
  std::vector<std::vector<DesiredService>> stacks = {
      {svc("a")}, {svc("a", 3), svc("b", 1, {"a"})}, {svc("x", 2, {"y"}), svc("y", 1, {"z"}), svc("z", 4)}};
  for (const auto& d : stacks) {
    auto p = plan("demo", d, reached(d)).value();
    CHECK(p.empty());
    CHECK(p.unchanged.size() == reached(d).size());
  }
}

TEST_CASE("a changed service is recreated, the others untouched") {
  std::vector<DesiredService> d = {svc("web"), svc("db")};
  auto o = reached(d);
  d[0].config_hash = "hash-web-2";
  d[0].fields["environment"] = "e2";
  CHECK(planned(d, o) == "~ recreate demo-web-1 (environment changed)\n");
  d[0].fields["command"] = "c";
  CHECK(planned(d, o) == "~ recreate demo-web-1 (command, environment changed)\n");
  o[0].fields.clear();  // a container recorded without field hashes
  CHECK(planned(d, o) == "~ recreate demo-web-1 (configuration changed)\n");
  d[0].fields = o[0].fields = {};
  d[0].config_hash = "hash-web";
  d[1].image_id = "sha256:new";
  CHECK(planned(d, o) == "~ recreate demo-db-1 (image changed)\n");
}

TEST_CASE("a stopped container is started: force recreates all") {
  std::vector<DesiredService> d = {svc("web")};
  auto o = reached(d);
  o[0].running = false;
  CHECK(planned(d, o) == "> start demo-web-1 (not running)\n");
  CHECK(planned(d, reached(d), {{}, true, false}) == "~ recreate demo-web-1 (forced)\n");
}

TEST_CASE("scaling up adds replicas, scaling down removes the highest numbers first") {
  std::vector<DesiredService> d = {svc("w", 2)};
  auto o = reached(d);
  d[0].replicas = 3;
  CHECK(planned(d, o) == "+ create demo-w-3 (new)\n");
  auto o4 = reached({svc("w", 4)});
  d[0].replicas = 1;
  CHECK(planned(d, o4) ==
        "- remove demo-w-4 (scaled down)\n- remove demo-w-3 (scaled down)\n"
        "- remove demo-w-2 (scaled down)\n");
}

TEST_CASE("orphans are reported, and removed only when asked") {
  std::vector<DesiredService> d = {svc("web")};
  auto o = reached({svc("web"), svc("old")});
  auto p = plan("demo", d, o).value();
  CHECK(p.empty());
  CHECK(p.orphans == std::vector<std::string>{"demo-old-1"});
  CHECK(planned(d, o, {{}, false, true}) == "- remove demo-old-1 (orphan)\n");
}

TEST_CASE("selected services bring their dependencies along") {
  std::vector<DesiredService> d = {svc("web", 1, {"api"}), svc("api", 1, {"db"}), svc("db"),
                                   svc("debug")};
  CHECK(planned(d, {}, {{"api"}, false, false}) ==
        "+ create demo-db-1 (new)\n+ create demo-api-1 (new)\n");
  CHECK(!plan("demo", d, {}, {{"nope"}, false, false}));
}

TEST_CASE("a dependency cycle is an error that names it") {
  auto r = start_order({svc("web", 1, {"api"}), svc("api", 1, {"web"})});
  REQUIRE(!r);
  CHECK(r.error().message == "dependency cycle: web -> api -> web");
  auto unknown = start_order({svc("web", 1, {"nope"})});
  REQUIRE(!unknown);
  CHECK(unknown.error().message == "service \"web\" depends on unknown service \"nope\"");
}

TEST_CASE("the continuous reconcile leaves a container the user stopped: up starts it") {
  std::vector<DesiredService> d = {svc("web")};
  auto o = reached(d);
  o[0].running = false;
  o[0].user_stopped = true;
  PlanOptions keep;
  keep.continuous = true;
  CHECK(plan("demo", d, o, keep).value().empty());
  CHECK(planned(d, o) == "> start demo-web-1 (not running)\n");
}

TEST_CASE("a completed one-shot job stays done for the continuous reconcile") {
  std::vector<DesiredService> d = {svc("migrate"), svc("web", 1, {"migrate"})};
  auto o = reached(d);
  o[0].running = false;
  o[0].completed = true;
  PlanOptions continuous;
  continuous.continuous = true;
  CHECK(plan("demo", d, o, continuous).value().empty());
  // An explicit up runs it again, as compose does.
  CHECK(planned(d, o) == "> start demo-migrate-1 (not running)\n");
  // A changed job is a new job: it runs once more, with its new configuration.
  d[0].config_hash = "hash-migrate-2";
  CHECK(render(plan("demo", d, o, continuous).value()) ==
        "~ recreate demo-migrate-1 (configuration changed)\n");
  // Exited without being done (its init vanished, or its policy restarts it): started.
  d[0].config_hash = "hash-migrate";
  o[0].completed = false;
  CHECK(render(plan("demo", d, o, continuous).value()) == "> start demo-migrate-1 (not running)\n");
}
