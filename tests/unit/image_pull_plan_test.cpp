// Pulls in the plan: a PullImage step per image and platform, decided by pull_policy (or
// `up --pull`) against the plan's `now`, that the creates of the services using it follow; a
// missing image that may not be pulled stops the plan with the service and the image named.
#include <doctest/doctest.h>

#include <algorithm>

#include "planner/plan.h"

using namespace stack::planner;
using namespace std::chrono_literals;

namespace {

using SysClock = std::chrono::system_clock;
const SysClock::time_point kNow = SysClock::time_point(std::chrono::hours(24 * 20000));

DesiredService service(std::string name, std::string image, bool present,
                       std::string policy = "missing") {
  DesiredService s;
  s.name = std::move(name);
  s.config_hash = "hash-" + s.name;
  s.image = std::move(image);
  s.image_present = present;
  s.image_id = present ? "sha256:img" : "";
  s.pull_policy = std::move(policy);
  s.image_where = "stack.yaml:3:12";
  s.networks = {"demo_default"};
  return s;
}

DesiredState stack_of(std::vector<DesiredService> services) {
  DesiredState d;
  d.project = "demo";
  d.networks = {{"demo_default", "net-hash", nullptr}};
  d.services = std::move(services);
  return d;
}

ObservedState running(const DesiredState& d) {
  ObservedState o;
  o.networks.push_back({"demo_default", "net-hash", true});
  for (const auto& s : d.services) {
    ObservedContainer c;
    c.name = container_name(d.project, s.name, 1);
    c.service = s.name;
    c.config_hash = s.config_hash;
    c.image_id = "sha256:img";
    c.running = true;
    c.started_at = 1;
    c.networks["demo_default"] = "net-hash";
    o.containers.push_back(c);
  }
  return o;
}

PlanOptions at_now(PlanOptions o = {}) {
  o.now = kNow;
  return o;
}

size_t index_of(const Plan& p, const std::string& line) {
  for (size_t i = 0; i < p.nodes.size(); i++)
    if (render_step(p.nodes[i]) == line) return i;
  FAIL("no step " << line << " in\n" << render(p));
  return 0;
}

}  // namespace

TEST_CASE("a missing image is pulled once, before the creates of every service using it") {
  auto d = stack_of({service("web", "reg:5000/app:1", false), service("worker", "reg:5000/app:1", false),
                     service("db", "busybox", true)});
  auto p = plan(d, {}, at_now());
  REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
  CHECK(render(*p) ==
        "+ pull reg:5000/app:1 (missing)\n"
        "+ network demo_default (new)\n"
        "+ create demo-web-1 (new)\n"
        "> start demo-web-1 (new)\n"
        "+ create demo-worker-1 (new)\n"
        "> start demo-worker-1 (new)\n"
        "+ create demo-db-1 (new)\n"
        "> start demo-db-1 (new)\n");
  size_t pull = index_of(*p, "+ pull reg:5000/app:1 (missing)");
  for (const char* create : {"+ create demo-web-1 (new)", "+ create demo-worker-1 (new)"}) {
    const auto& after = p->nodes[index_of(*p, create)].after;
    CHECK(std::find(after.begin(), after.end(), pull) != after.end());
  }
  const auto& db = p->nodes[index_of(*p, "+ create demo-db-1 (new)")].after;
  CHECK(std::find(db.begin(), db.end(), pull) == db.end());
  CHECK(std::string(step_kind(p->nodes[pull].step)) == "pull");
  CHECK(step_object(p->nodes[pull].step) == "reg:5000/app:1");
}

TEST_CASE("a present image is not pulled again with missing, and a reached state plans nothing") {
  auto d = stack_of({service("web", "busybox", true)});
  auto p = plan(d, running(d), at_now());
  REQUIRE(p);
  CHECK(p->empty());
}

TEST_CASE("pull_policy always, and up --pull always, pull a present image on an explicit up only") {
  auto d = stack_of({service("web", "busybox", true, "always")});
  auto p = plan(d, running(d), at_now());
  REQUIRE(p);
  CHECK(render(*p) == "+ pull busybox (policy always)\n");
  PlanOptions continuous = at_now();
  continuous.continuous = true;
  CHECK(plan(d, running(d), continuous)->empty());  // a resync does not hammer the registry
  // nor pulls what is missing: that is reported, for an explicit up or stack pull to fetch.
  auto missing = stack_of({service("web", "busybox", false)});
  auto r = plan(missing, {}, continuous);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("image \"busybox\" is not in the image store") != std::string::npos);
  auto m = stack_of({service("web", "busybox", true)});
  PlanOptions forced = at_now();
  forced.pull = "always";
  CHECK(render(*plan(m, running(m), forced)) == "+ pull busybox (policy always)\n");
}

TEST_CASE("daily pulls when the last pull is a day old, not before") {
  auto d = stack_of({service("web", "busybox", true, "daily")});
  d.services[0].last_pulled = kNow - 23h;
  CHECK(plan(d, running(d), at_now())->empty());
  d.services[0].last_pulled = kNow - 25h;
  CHECK(render(*plan(d, running(d), at_now())) == "+ pull busybox (policy daily)\n");
}

TEST_CASE("pull_policy never with a missing image stops the plan, naming the service and the image") {
  auto d = stack_of({service("web", "reg:5000/app:1", false, "never")});
  auto p = plan(d, {}, at_now());
  REQUIRE_FALSE(p);
  CHECK(p.error().message.find("stack.yaml:3:12: service \"web\": image \"reg:5000/app:1\"") ==
        0);
  CHECK(p.error().message.find("pull_policy is never") != std::string::npos);
  // up --pull never does the same to a service that would pull.
  auto m = stack_of({service("web", "reg:5000/app:1", false)});
  PlanOptions never = at_now();
  never.pull = "never";
  CHECK_FALSE(plan(m, {}, never));
}

TEST_CASE("a missing image is not taken for a changed one: running containers are left alone") {
  // The image was removed from under a running container (image rm -f): pulled, not recreated.
  auto d = stack_of({service("web", "busybox", false)});
  auto p = plan(d, running(d), at_now());
  REQUIRE(p);
  CHECK(render(*p) == "+ pull busybox (missing)\n");
}

TEST_CASE("a platform of its own is a pull of its own") {
  auto amd = service("a", "busybox", false);
  auto arm = service("b", "busybox", false);
  arm.platform = "linux/arm64";
  auto p = plan(stack_of({amd, arm}), {}, at_now());
  REQUIRE(p);
  CHECK(render(*p).find("+ pull busybox (missing)\n+ pull busybox for linux/arm64 (missing)\n") == 0);
}

TEST_CASE("the image of a type image mount is pulled as the service's own, before its create") {
  auto web = service("web", "busybox", true);
  web.mount_images.push_back({"reg:5000/assets:1", false, {}});
  web.mount_images.push_back({"busybox", true, {}});
  auto p = plan(stack_of({web}), {}, at_now());
  REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
  CHECK(render(*p).find("+ pull reg:5000/assets:1 (missing)\n") == 0);
  CHECK(render(*p).find("+ pull busybox") == std::string::npos);  // present: used as it is
  size_t pull = index_of(*p, "+ pull reg:5000/assets:1 (missing)");
  const auto& after = p->nodes[index_of(*p, "+ create demo-web-1 (new)")].after;
  CHECK(std::find(after.begin(), after.end(), pull) != after.end());
  // pull_policy never: a missing mount image stops the plan, named.
  auto never = service("web", "busybox", true, "never");
  never.mount_images.push_back({"reg:5000/assets:1", false, {}});
  auto refused = plan(stack_of({never}), {}, at_now());
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("image mount \"reg:5000/assets:1\" is not in the image store") !=
        std::string::npos);
}
