// Builds in the plan: a BuildImage step per image a selected service builds — when the image is
// missing, with `up --build`, always with pull_policy build — before the creates of every
// service using it; none in the continuous reconcile or once this up's builds are done.
#include <doctest/doctest.h>

#include "planner/plan.h"

using namespace stack;
using namespace stack::planner;

namespace {

DesiredService built(std::string name, std::string image, bool present,
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
  auto b = std::make_shared<model::BuildConfig>();
  b->image = s.image;
  b->context = "/src/" + s.name;
  s.build = b;
  return s;
}

DesiredState stack_of(std::vector<DesiredService> services) {
  DesiredState d;
  d.project = "demo";
  d.networks = {{"demo_default", "net-hash", nullptr}};
  d.services = std::move(services);
  return d;
}

ObservedState running(const DesiredState& d, const std::string& image_id = "sha256:img") {
  ObservedState o;
  o.networks.push_back({"demo_default", "net-hash", true});
  for (const auto& s : d.services) {
    ObservedContainer c;
    c.name = container_name(d.project, s.name, 1);
    c.service = s.name;
    c.config_hash = s.config_hash;
    c.image_id = image_id;
    c.running = true;
    c.started_at = 1;
    c.networks["demo_default"] = "net-hash";
    o.containers.push_back(c);
  }
  return o;
}

Plan planned(const DesiredState& d, const ObservedState& o, PlanOptions opts = {}) {
  auto p = plan(d, o, opts);
  REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
  return *p;
}

}  // namespace

TEST_CASE("a missing built image is built once, before the creates of every service using it") {
  auto d = stack_of({built("web", "demo-app:latest", false), built("worker", "demo-app:latest", false),
                     built("api", "demo-api:latest", false)});
  Plan p = planned(d, {});
  CHECK(render(p) ==
        "+ build demo-app:latest for web, worker (missing)\n"
        "+ build demo-api:latest for api (missing)\n"
        "+ network demo_default (new)\n"
        "+ create demo-web-1 (new)\n"
        "> start demo-web-1 (new)\n"
        "+ create demo-worker-1 (new)\n"
        "> start demo-worker-1 (new)\n"
        "+ create demo-api-1 (new)\n"
        "> start demo-api-1 (new)\n");
  // The creates follow their build; the two builds follow nothing, so they run in parallel.
  CHECK(p.nodes[0].after.empty());
  CHECK(p.nodes[1].after.empty());
  CHECK(p.nodes[3].after == std::vector<size_t>{0, 2});
  CHECK(p.nodes[5].after == std::vector<size_t>{0, 2});
  CHECK(p.nodes[7].after == std::vector<size_t>{1, 2});
  CHECK(std::get<BuildImage>(p.nodes[0].step).config->context == "/src/web");
}

TEST_CASE("a built image that is present is not built again, unless up --build or pull_policy build") {
  auto d = stack_of({built("web", "demo-web:latest", true)});
  CHECK(planned(d, running(d)).empty());
  PlanOptions rebuild;
  rebuild.build = true;
  CHECK(render(planned(d, running(d), rebuild)) == "+ build demo-web:latest for web (up --build)\n");
  auto always = stack_of({built("web", "demo-web:latest", true, "build")});
  CHECK(render(planned(always, running(always))) ==
        "+ build demo-web:latest for web (pull_policy build)\n");
}

TEST_CASE("up --build of one service builds only what it selects") {
  auto d = stack_of({built("web", "demo-web:latest", true), built("api", "demo-api:latest", true)});
  PlanOptions opts;
  opts.build = true;
  opts.services = {"api"};
  CHECK(render(planned(d, running(d), opts)) == "+ build demo-api:latest for api (up --build)\n");
}

TEST_CASE("after the builds: a changed image id recreates, an unchanged one leaves it alone") {
  auto d = stack_of({built("web", "demo-web:latest", true)});
  PlanOptions after;
  after.build = true;
  after.built = true;
  CHECK(planned(d, running(d), after).empty());
  CHECK(render(planned(d, running(d, "sha256:older"), after)) ==
        "< stop demo-web-1 (image changed)\n"
        "- remove demo-web-1 (image changed)\n"
        "+ create demo-web-1 (image changed)\n"
        "> start demo-web-1 (image changed)\n");
}

TEST_CASE("the continuous reconcile builds nothing and names a missing built image") {
  auto d = stack_of({built("web", "demo-web:latest", false, "build")});
  PlanOptions continuous;
  continuous.continuous = true;
  auto p = plan(d, {}, continuous);
  REQUIRE(!p);
  CHECK(p.error().message ==
        "stack.yaml:3:12: service \"web\": image \"demo-web:latest\" is not in the image store "
        "(build it with: stack build web, or stack up)");
  auto present = stack_of({built("web", "demo-web:latest", true, "build")});
  CHECK(planned(present, running(present), continuous).empty());
}
