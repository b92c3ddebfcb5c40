// The planner as tables of (desired, observed) -> the plan a person would expect, and the
// property that re-planning a reached state is empty.
#include <doctest/doctest.h>

#include "planner/plan.h"

using namespace stack::planner;
using namespace std::chrono_literals;

namespace {

// a_service("web").replicas(2).depends_on("db", Condition::kHealthy)
struct ServiceBuilder {
  DesiredService s;
  explicit ServiceBuilder(std::string name) {
    s.name = std::move(name);
    s.config_hash = "hash-" + s.name;
    s.fields = {{"image", "i"}, {"environment", "e1"}};
    s.image_id = "sha256:img";
    s.networks = {"demo_default"};
  }
  ServiceBuilder& replicas(int n) { return s.replicas = n, *this; }
  ServiceBuilder& depends_on(std::string svc, Condition c = Condition::kStarted, bool restart = false) {
    s.depends_on.push_back({std::move(svc), c, true, restart});
    return *this;
  }
  ServiceBuilder& env(std::string value) {
    s.fields["environment"] = value;
    s.config_hash = "hash-" + s.name + "-" + value;
    return *this;
  }
  ServiceBuilder& start_first(int parallelism = 1) {
    s.update.order = UpdatePolicy::Order::kStartFirst;
    s.update.parallelism = parallelism;
    return *this;
  }
  ServiceBuilder& parallelism(int p, std::chrono::milliseconds delay = 0ms) {
    s.update.parallelism = p;
    s.update.delay = delay;
    return *this;
  }
  ServiceBuilder& healthcheck() { return s.healthcheck = true, *this; }
  ServiceBuilder& network_service(std::string svc) {
    s.network_service = std::move(svc);
    s.networks.clear();
    return *this;
  }
  operator DesiredService() const { return s; }
};
ServiceBuilder a_service(std::string name) { return ServiceBuilder(std::move(name)); }

DesiredState a_stack(std::vector<DesiredService> services) {
  DesiredState d;
  d.project = "demo";
  d.networks = {{"demo_default", "net-hash", nullptr}};
  d.services = std::move(services);
  return d;
}

// The state an executed plan leaves: every replica running as desired, every network made.
ObservedState reached(const DesiredState& d) {
  ObservedState o;
  for (const auto& n : d.networks) o.networks.push_back({n.name, n.config_hash, true});
  for (const auto& s : d.services)
    for (int n = 1; n <= s.replicas; n++) {
      ObservedContainer c;
      c.name = container_name(d.project, s.name, n);
      c.service = s.name;
      c.number = n;
      c.config_hash = s.config_hash;
      c.fields = s.fields;
      c.image_id = s.image_id;
      c.running = true;
      c.started_at = 1000;
      c.joined_started_at = s.network_service.empty() ? 0 : 1000;
      for (const auto& net : s.networks) c.networks[net] = "net-hash";
      o.containers.push_back(c);
    }
  return o;
}

ObservedContainer& find(ObservedState& o, const std::string& name) {
  for (auto& c : o.containers)
    if (c.name == name) return c;
  FAIL("no container " << name);
  throw;
}

std::string planned(const DesiredState& d, const ObservedState& o, PlanOptions opts = {}) {
  auto p = plan(d, o, opts);
  REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
  return render(*p);
}

// Every node comes after the nodes it names.
void check_order(const Plan& p) {
  for (size_t i = 0; i < p.nodes.size(); i++)
    for (size_t a : p.nodes[i].after) CHECK(a < i);
}

}  // namespace

TEST_CASE("a new stack: its network, then each replica created and started, dependencies first") {
  auto d = a_stack({a_service("web").replicas(2).depends_on("db"), a_service("db")});
  CHECK(planned(d, {}) ==
        "+ network demo_default (new)\n"
        "+ create demo-db-1 (new)\n"
        "> start demo-db-1 (new)\n"
        "= await demo-db-1 started (web depends on db)\n"
        "+ create demo-web-1 (new)\n"
        "> start demo-web-1 (new)\n"
        "+ create demo-web-2 (new)\n"
        "> start demo-web-2 (new)\n");
  auto p = plan(d, {}).value();
  check_order(p);
  // web's creation waits for the network and db's await, not for db's creation alone.
  CHECK(p.nodes[4].after == std::vector<size_t>{0, 3});
}

TEST_CASE("re-planning a reached state is empty") {
  std::vector<DesiredState> stacks = {
      a_stack({a_service("a")}),
      a_stack({a_service("a").replicas(3), a_service("b").depends_on("a", Condition::kHealthy)}),
      a_stack({a_service("x").replicas(2).depends_on("y"), a_service("y").depends_on("z"),
               a_service("z").replicas(4).start_first()}),
      a_stack({a_service("app"), a_service("side").network_service("app")})};
  for (const auto& d : stacks) {
    auto p = plan(d, reached(d)).value();
    CHECK(p.empty());
    CHECK(p.unchanged.size() == reached(d).containers.size());
    auto continuous = PlanOptions{};
    continuous.continuous = true;
    CHECK(plan(d, reached(d), continuous).value().empty());
  }
}

TEST_CASE("a changed service is recreated stop-first, the others untouched, awaits only for starts") {
  auto before = a_stack({a_service("web").depends_on("db"), a_service("db")});
  auto o = reached(before);
  auto d = a_stack({a_service("web").depends_on("db").env("e2"), a_service("db")});
  CHECK(planned(d, o) ==
        "= await demo-db-1 started (web depends on db)\n"
        "< stop demo-web-1 (environment changed)\n"
        "- remove demo-web-1 (environment changed)\n"
        "+ create demo-web-1 (environment changed)\n"
        "> start demo-web-1 (environment changed)\n");
  find(o, "demo-web-1").fields.clear();  // a container recorded without field hashes
  CHECK(planned(d, o).find("(configuration changed)") != std::string::npos);
}

TEST_CASE("start-first: the new container takes the name, traffic moves when it is healthy") {
  auto before = a_stack({a_service("web").start_first().healthcheck()});
  auto o = reached(before);
  auto d = a_stack({a_service("web").start_first().healthcheck().env("e2")});
  CHECK(planned(d, o) ==
        "~ rename demo-web-1 to demo-web-1-old (environment changed, start-first)\n"
        "+ create demo-web-1 (environment changed, start-first)\n"
        "> start demo-web-1 (environment changed, start-first)\n"
        "= await demo-web-1 healthy (environment changed, start-first)\n"
        "~ switch traffic demo-web-1-old to demo-web-1 (environment changed, start-first)\n"
        "< stop demo-web-1-old (environment changed, start-first)\n"
        "- remove demo-web-1-old (environment changed, start-first)\n");
  // A stopped container has no traffic to keep: replaced stop-first.
  find(o, "demo-web-1").running = false;
  CHECK(planned(d, o).find("rename") == std::string::npos);
}

TEST_CASE("an update goes in batches of parallelism, with the delay between them") {
  auto before = a_stack({a_service("web").replicas(3).parallelism(2, 500ms)});
  auto o = reached(before);
  auto d = a_stack({a_service("web").replicas(3).parallelism(2, 500ms).env("e2")});
  auto p = plan(d, o).value();
  check_order(p);
  std::string text = render(p);
  CHECK(text.find("= delay 500 ms (update delay)\n< stop demo-web-3") != std::string::npos);
  // Replica 3's stop waits for the delay, which waits for the starts of 1 and 2.
  size_t delay = 0, start1 = 0, start2 = 0, stop3 = 0;
  for (size_t i = 0; i < p.nodes.size(); i++) {
    auto line = render_step(p.nodes[i]);
    if (line.rfind("= delay", 0) == 0) delay = i;
    if (line.rfind("> start demo-web-1", 0) == 0) start1 = i;
    if (line.rfind("> start demo-web-2", 0) == 0) start2 = i;
    if (line.rfind("< stop demo-web-3", 0) == 0) stop3 = i;
  }
  CHECK(p.nodes[delay].after == std::vector<size_t>{start1, start2});
  CHECK(std::count(p.nodes[stop3].after.begin(), p.nodes[stop3].after.end(), delay) == 1);
}

TEST_CASE("a changed network is made again with every container on it") {
  auto d = a_stack({a_service("web"), a_service("db")});
  auto o = reached(d);
  d.networks[0].config_hash = "net-hash-2";
  CHECK(planned(d, o) ==
        "< stop demo-web-1 (network demo_default changed)\n"
        "- remove demo-web-1 (network demo_default changed)\n"
        "< stop demo-db-1 (network demo_default changed)\n"
        "- remove demo-db-1 (network demo_default changed)\n"
        "~ network demo_default (definition changed)\n"
        "+ create demo-web-1 (network demo_default changed)\n"
        "> start demo-web-1 (network demo_default changed)\n"
        "+ create demo-db-1 (network demo_default changed)\n"
        "> start demo-db-1 (network demo_default changed)\n");
  // Interrupted after the network was made again: the containers still go.
  o.networks[0].config_hash = "net-hash-2";
  CHECK(planned(d, o).find("~ network") == std::string::npos);
  CHECK(planned(d, o).find("+ create demo-web-1 (network demo_default changed)") != std::string::npos);
}

TEST_CASE("a bridge gone from the host is made again, its containers kept") {
  auto d = a_stack({a_service("web")});
  auto o = reached(d);
  o.networks[0].present = false;
  CHECK(planned(d, o) == "+ network demo_default (bridge missing)\n");
}

TEST_CASE("network_mode service:NAME follows NAME when it is started anew") {
  auto d = a_stack({a_service("app"), a_service("side").network_service("app")});
  auto o = reached(d);
  find(o, "demo-app-1").running = false;
  CHECK(planned(d, o) ==
        "> start demo-app-1 (not running)\n"
        "= await demo-app-1 started (side depends on app)\n"
        "< stop demo-side-1 (joins the network namespace of demo-app-1, started anew)\n"
        "> start demo-side-1 (joins the network namespace of demo-app-1, started anew)\n");
  // app restarted by its policy since side joined it: side's namespace is the old one.
  o = reached(d);
  find(o, "demo-app-1").started_at = 2000;
  CHECK(planned(d, o).find("< stop demo-side-1 (joins") != std::string::npos);
}

TEST_CASE("depends_on restart: true restarts the dependent after its dependency is recreated") {
  auto before = a_stack({a_service("web").depends_on("db", Condition::kStarted, true), a_service("db")});
  auto o = reached(before);
  auto d = a_stack({a_service("web").depends_on("db", Condition::kStarted, true), a_service("db").env("e2")});
  CHECK(planned(d, o).find("< stop demo-web-1 (dependency db restarted)") != std::string::npos);
  auto no_restart = a_stack({a_service("web").depends_on("db"), a_service("db").env("e2")});
  CHECK(planned(no_restart, o).find("demo-web-1") == std::string::npos);
}

TEST_CASE("a stopped container is started: force recreates all") {
  auto d = a_stack({a_service("web"), a_service("db")});
  auto o = reached(d);
  find(o, "demo-db-1").running = false;
  CHECK(planned(d, o) == "> start demo-db-1 (not running)\n");
  PlanOptions force;
  force.force_recreate = true;
  CHECK(planned(d, o, force).find("+ create demo-web-1 (forced)") != std::string::npos);
}

TEST_CASE("the continuous reconcile leaves a container the user stopped: up starts it") {
  auto d = a_stack({a_service("web")});
  auto o = reached(d);
  find(o, "demo-web-1").running = false;
  find(o, "demo-web-1").user_stopped = true;
  PlanOptions continuous;
  continuous.continuous = true;
  CHECK(plan(d, o, continuous).value().empty());
  CHECK(planned(d, o) == "> start demo-web-1 (not running)\n");
}

TEST_CASE("a completed one-shot job stays done for the continuous reconcile") {
  auto d = a_stack({a_service("migrate"), a_service("web").depends_on("migrate", Condition::kCompletedSuccessfully)});
  auto o = reached(d);
  find(o, "demo-migrate-1").running = false;
  find(o, "demo-migrate-1").completed = true;
  PlanOptions continuous;
  continuous.continuous = true;
  CHECK(plan(d, o, continuous).value().empty());
  // An explicit up runs it again, as compose does.
  CHECK(planned(d, o) == "> start demo-migrate-1 (not running)\n");
  // A changed job is a new job: it runs once more, with its new configuration.
  auto changed = a_stack({a_service("migrate").env("e2"),
                          a_service("web").depends_on("migrate", Condition::kCompletedSuccessfully)});
  CHECK(planned(changed, o, continuous).find("+ create demo-migrate-1 (environment changed)") !=
        std::string::npos);
  // Exited without being done (its init vanished, or its policy restarts it): started.
  find(o, "demo-migrate-1").completed = false;
  CHECK(planned(d, o, continuous) == "> start demo-migrate-1 (not running)\n");
}

TEST_CASE("scaling down removes the highest numbers first: orphans only when asked") {
  auto before = a_stack({a_service("web").replicas(3), a_service("old")});
  auto o = reached(before);
  auto d = a_stack({a_service("web")});
  CHECK(planned(d, o) ==
        "< stop demo-web-3 (scaled down)\n- remove demo-web-3 (scaled down)\n"
        "< stop demo-web-2 (scaled down)\n- remove demo-web-2 (scaled down)\n");
  CHECK(plan(d, o).value().orphans == std::vector<std::string>{"demo-old-1"});
  PlanOptions rm;
  rm.remove_orphans = true;
  CHECK(planned(d, o, rm).find("< stop demo-old-1 (orphan)\n- remove demo-old-1 (orphan)\n") !=
        std::string::npos);
}

TEST_CASE("up SERVICE touches that service and what it needs, nothing else") {
  auto d = a_stack({a_service("web").depends_on("db"), a_service("db"), a_service("other")});
  PlanOptions only;
  only.services = {"web"};
  std::string text = planned(d, {}, only);
  CHECK(text.find("demo-db-1") != std::string::npos);
  CHECK(text.find("demo-other-1") == std::string::npos);
  only.services = {"nope"};
  CHECK(plan(d, {}, only).error().message == "no such service: nope");
}

TEST_CASE("a dependency cycle is an error that names it") {
  auto r = start_order({a_service("web").depends_on("api"), a_service("api").depends_on("web")});
  REQUIRE(!r);
  CHECK(r.error().message == "dependency cycle: web -> api -> web");
  auto unknown = start_order({a_service("web").depends_on("nope")});
  REQUIRE(!unknown);
  CHECK(unknown.error().message == "service \"web\" depends on unknown service \"nope\"");
}

TEST_CASE("down stops dependents first, removes every container, then the networks") {
  auto d = a_stack({a_service("web").depends_on("db"), a_service("db")});
  auto o = reached(d);
  ObservedContainer orphan;
  orphan.name = "demo-gone-1";
  orphan.service = "gone";
  o.containers.push_back(orphan);
  auto p = plan_down(d.services, o);
  check_order(p);
  CHECK(render(p) ==
        "< stop demo-gone-1 (down)\n"
        "< stop demo-web-1 (down)\n"
        "< stop demo-db-1 (down)\n"
        "- remove demo-web-1 (down)\n"
        "- remove demo-db-1 (down)\n"
        "- remove demo-gone-1 (down)\n"
        "- network demo_default (down)\n");
  CHECK(p.nodes[2].after == std::vector<size_t>{1});  // db after web
  CHECK(render(plan_stop(d.services, o, {"db"})) == "< stop demo-db-1 (stop)\n");
}

TEST_CASE("start: containers that do not run, after their dependencies' conditions") {
  auto d = a_stack({a_service("web").depends_on("db", Condition::kHealthy), a_service("db")});
  auto o = reached(d);
  for (auto& c : o.containers) c.running = false;
  CHECK(render(plan_start(d.services, o, {})) ==
        "> start demo-db-1 (start)\n"
        "= await demo-db-1 healthy (web depends on db)\n"
        "> start demo-web-1 (start)\n");
  CHECK(render(plan_start(d.services, o, {"db"})) == "> start demo-db-1 (start)\n");
  find(o, "demo-db-1").running = true;  // running already: only awaited
  CHECK(render(plan_start(d.services, o, {})) ==
        "= await demo-db-1 healthy (web depends on db)\n> start demo-web-1 (start)\n");
}

TEST_CASE("restart of a dependency restarts the services that follow it with restart: true") {
  auto d = a_stack({a_service("web").depends_on("db", Condition::kStarted, true),
                    a_service("worker").depends_on("db"), a_service("db")});
  auto p = plan_restart(d.services, reached(d), {"db"});
  check_order(p);
  CHECK(render(p) ==
        "< stop demo-web-1 (restart)\n"
        "< stop demo-db-1 (restart)\n"
        "> start demo-db-1 (restart)\n"
        "= await demo-db-1 started (web depends on db)\n"
        "> start demo-web-1 (restart)\n");
}

TEST_CASE("a named volume is made before the containers that mount it, once, and kept") {
  auto d = a_stack({a_service("db"), a_service("web")});
  d.services[0].volumes = {"demo_data"};
  d.volumes = {{"demo_data", nullptr}};
  CHECK(planned(d, {}) ==
        "+ network demo_default (new)\n"
        "+ volume demo_data (new)\n"
        "+ create demo-db-1 (new)\n"
        "> start demo-db-1 (new)\n"
        "+ create demo-web-1 (new)\n"
        "> start demo-web-1 (new)\n");
  auto p = plan(d, {}).value();
  check_order(p);
  CHECK(p.nodes[2].after == std::vector<size_t>{0, 1});  // db's create follows its volume
  CHECK(p.nodes[4].after == std::vector<size_t>{0});     // web mounts none
  auto o = reached(d);
  o.volumes = {{"demo_data", true}};
  CHECK(planned(d, o).empty());
  o.volumes[0].present = false;  // its directory removed behind stack's back
  CHECK(planned(d, o) == "+ volume demo_data (directory missing)\n");
}

TEST_CASE("down keeps named volumes, down -v removes them after every container") {
  auto d = a_stack({a_service("db")});
  auto o = reached(d);
  o.volumes = {{"demo_data", true}};
  CHECK(render(plan_down(d.services, o)).find("volume") == std::string::npos);
  auto p = plan_down(d.services, o, true);
  check_order(p);
  CHECK(render(p) ==
        "< stop demo-db-1 (down)\n"
        "- remove demo-db-1 (down)\n"
        "- network demo_default (down)\n"
        "- volume demo_data (down -v)\n");
  CHECK(p.nodes[3].after == std::vector<size_t>{1});
}

TEST_CASE("create (no_start): containers made, none started, no dependency awaited") {
  auto d = a_stack({a_service("web").depends_on("db"), a_service("db")});
  PlanOptions opts;
  opts.no_start = {"web", "db"};
  CHECK(planned(d, {}, opts) ==
        "+ network demo_default (new)\n"
        "+ create demo-db-1 (new)\n"
        "+ create demo-web-1 (new)\n");
  // Created, not running: a pass that keeps them so plans nothing; without it, they start.
  auto o = reached(d);
  for (auto& c : o.containers) c.running = false;
  opts.continuous = true;
  CHECK(planned(d, o, opts).empty());
  PlanOptions plain;
  plain.continuous = true;
  CHECK(planned(d, o, plain).find("> start demo-web-1 (not running)") != std::string::npos);
}

TEST_CASE("a removed service: its missing replicas are not made again, the others are") {
  auto d = a_stack({a_service("web").replicas(2), a_service("db")});
  auto o = reached(d);
  std::erase_if(o.containers, [](const auto& c) { return c.name == "demo-db-1"; });  // gone
  PlanOptions opts;
  opts.continuous = true;
  opts.removed = {"db"};
  CHECK(planned(d, o, opts).empty());
  opts.removed.clear();
  CHECK(planned(d, o, opts) == "+ create demo-db-1 (new)\n> start demo-db-1 (new)\n");
}

TEST_CASE("no_recreate keeps changed containers and starts stopped ones, force still recreates") {
  auto before = a_stack({a_service("web"), a_service("db")});
  auto o = reached(before);
  find(o, "demo-db-1").running = false;
  auto d = a_stack({a_service("web").env("e2"), a_service("db")});
  PlanOptions opts;
  opts.no_recreate = true;
  CHECK(planned(d, o, opts) == "> start demo-db-1 (not running)\n");
  opts.force_recreate = true;
  CHECK(planned(d, o, opts).find("+ create demo-web-1 (forced)") != std::string::npos);
}

TEST_CASE("always_recreate_deps recreates what the selected services depend on, and only that") {
  auto d = a_stack({a_service("web").depends_on("api"), a_service("api").depends_on("db"),
                    a_service("db"), a_service("other")});
  PlanOptions opts;
  opts.services = {"web"};
  opts.always_recreate_deps = true;
  auto text = planned(d, reached(d), opts);
  CHECK(text.find("+ create demo-api-1 (dependency, always recreated)") != std::string::npos);
  CHECK(text.find("+ create demo-db-1 (dependency, always recreated)") != std::string::npos);
  CHECK(text.find("create demo-web-1") == std::string::npos);
  CHECK(text.find("demo-other-1") == std::string::npos);
}

TEST_CASE("no_deps: only the named services, and no await on a dependency not selected") {
  auto d = a_stack({a_service("web").depends_on("db"), a_service("db")});
  PlanOptions opts;
  opts.services = {"web"};
  opts.no_deps = true;
  CHECK(planned(d, {}, opts) ==
        "+ network demo_default (new)\n"
        "+ create demo-web-1 (new)\n"
        "> start demo-web-1 (new)\n");
}

TEST_CASE("one_off: the run container is made after its dependencies, the replicas left alone") {
  auto file = a_stack({a_service("web").replicas(3).depends_on("db"), a_service("db")});
  auto o = reached(file);
  auto run = a_stack({a_service("web").depends_on("db"), a_service("db")});
  run.services[0].container_name = "demo-web-run-0123456789ab";
  PlanOptions opts;
  opts.services = {"web"};
  opts.one_off = "web";
  CHECK(planned(run, o, opts) ==
        "= await demo-db-1 started (web depends on db)\n"
        "+ create demo-web-run-0123456789ab (new)\n"
        "> start demo-web-run-0123456789ab (new)\n");
}

TEST_CASE("in a cluster only this node's slots are made, and a slot moved away is removed") {
  auto d = a_stack({a_service("web").replicas(4), a_service("db")});
  d.services[0].slots = std::set<int>{2, 4};
  d.services[1].slots = std::set<int>{};  // db runs on another node
  d.services[0].depends_on.push_back({"db", Condition::kStarted, true, false});
  auto fresh = planned(d, ObservedState{});
  CHECK(fresh.find("demo-web-2") != std::string::npos);
  CHECK(fresh.find("demo-web-4") != std::string::npos);
  CHECK(fresh.find("demo-web-1") == std::string::npos);
  CHECK(fresh.find("demo-web-3") == std::string::npos);
  CHECK(fresh.find("demo-db-1") == std::string::npos);  // neither made nor awaited here

  // Slots 1 and 2 ran here; now 2 and 4 do: 1 goes, 4 comes, 2 stays.
  auto before = a_stack({a_service("web").replicas(2)});
  auto o = reached(before);
  auto now = a_stack({a_service("web").replicas(4)});
  now.services[0].slots = std::set<int>{2, 4};
  auto p = planned(now, o);
  CHECK(p.find("stop demo-web-1 (slot moved to another node)") != std::string::npos);
  CHECK(p.find("remove demo-web-1 (slot moved to another node)") != std::string::npos);
  CHECK(p.find("demo-web-4") != std::string::npos);
  CHECK(p.find("demo-web-2") == std::string::npos);
  CHECK(p.find("demo-web-3") == std::string::npos);
}

TEST_CASE("in a cluster a network no slot here joins any more goes after its last container") {
  // web's only replica ran here and moved away: demo_default is released (restrict_to_slots).
  auto before = a_stack({a_service("web"), a_service("db")});
  auto o = reached(before);
  auto now = a_stack({a_service("web"), a_service("db")});
  now.services[0].slots = std::set<int>{};
  now.services[1].slots = std::set<int>{};
  now.networks.clear();
  now.released_networks = {"demo_default"};
  CHECK(planned(now, o) ==
        "< stop demo-web-1 (slot moved to another node)\n"
        "- remove demo-web-1 (slot moved to another node)\n"
        "< stop demo-db-1 (slot moved to another node)\n"
        "- remove demo-db-1 (slot moved to another node)\n"
        "- network demo_default (no replica here)\n");
  auto p = plan(now, o).value();
  const auto& last = p.nodes.back();
  CHECK(std::holds_alternative<RemoveNetwork>(last.step));
  CHECK(last.after.size() == 2);  // both removals first

  // A container of the project that stays on it (a service the pass does not touch): kept.
  PlanOptions only_web;
  only_web.services = {"web"};
  CHECK(planned(now, o, only_web).find("network") == std::string::npos);
  // Without a release (one host, or a network still used here): never removed by up.
  now.released_networks.clear();
  CHECK(planned(now, o).find("network") == std::string::npos);
}
