// Provider services (compose's `provider:`): the plan runs a provider only on an explicit up,
// before its dependents and after the providers it depends on; `down` runs its down after
// every container is gone; its stdout lines parse as compose's protocol; the state store keeps
// its variables sealed; and check_supported refuses a provider that depends on a container.
#include <doctest/doctest.h>

#include <fstream>

#include "planner/plan.h"
#include "reconciler/providers.h"
#include "spec/loader.h"
#include "state/store.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::planner;

namespace {

DesiredService container(std::string name, std::vector<std::string> deps = {}) {
  DesiredService s;
  s.name = std::move(name);
  s.config_hash = "hash-" + s.name;
  s.image = "busybox:latest";
  s.image_id = "sha256:img";
  for (auto& d : deps) s.depends_on.push_back({d});
  return s;
}

DesiredService provider(std::string name, std::vector<std::string> deps = {}) {
  DesiredService s;
  s.name = std::move(name);
  s.config_hash = "hash-" + s.name;
  s.replicas = 0;
  auto c = std::make_shared<model::ProviderConfig>();
  c->type = "cloud";
  s.provider = c;
  for (auto& d : deps) s.depends_on.push_back({d});
  return s;
}

DesiredState stack_of(std::vector<DesiredService> services) {
  DesiredState d;
  d.project = "demo";
  d.services = std::move(services);
  return d;
}

Plan planned(const DesiredState& d, PlanOptions opts = {}) {
  auto p = plan(d, ObservedState{}, opts);
  REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
  return *p;
}

size_t index_of(const Plan& p, const std::string& line) {
  for (size_t i = 0; i < p.nodes.size(); ++i)
    if (render_step(p.nodes[i]).rfind(line, 0) == 0) return i;
  FAIL("no step " << line << " in\n" << render(p));
  return 0;
}

}  // namespace

TEST_CASE("an explicit up runs a provider before its dependents and after the providers it needs") {
  auto d = stack_of({provider("db", {"vault"}), provider("vault"), container("app", {"db"})});
  Plan p = planned(d);
  size_t vault = index_of(p, "+ provider vault up (cloud)");
  size_t db = index_of(p, "+ provider db up (cloud)");
  size_t start = index_of(p, "> start demo-app-1");
  CHECK(std::count(p.nodes[db].after.begin(), p.nodes[db].after.end(), vault) == 1);
  CHECK(std::count(p.nodes[start].after.begin(), p.nodes[start].after.end(), db) == 1);
  CHECK(render(p).find("demo-db-1") == std::string::npos);  // no container of a provider
}

TEST_CASE("the continuous reconcile and the second plan of an up never run a provider") {
  auto d = stack_of({provider("db"), container("app", {"db"})});
  PlanOptions continuous;
  continuous.continuous = true;
  CHECK(render(planned(d, continuous)).find("provider") == std::string::npos);
  PlanOptions done;
  done.providers_done = true;
  CHECK(render(planned(d, done)).find("provider") == std::string::npos);
}

TEST_CASE("down runs each provider's down after the containers, dependents first") {
  ObservedState o;
  ObservedContainer c;
  c.name = "demo-app-1";
  c.service = "app";
  o.containers.push_back(c);
  auto config = std::make_shared<const model::ProviderConfig>();
  std::vector<RunProvider> runs{{"db", "up", config}, {"vault", "up", config}};
  Plan p = plan_down({container("app", {"db"}), provider("db", {"vault"}), provider("vault")}, o,
                     false, runs);
  size_t removed = index_of(p, "- remove demo-app-1");
  size_t db = index_of(p, "- provider db down");
  size_t vault = index_of(p, "- provider vault down");
  CHECK(std::count(p.nodes[db].after.begin(), p.nodes[db].after.end(), removed) == 1);
  CHECK(std::count(p.nodes[vault].after.begin(), p.nodes[vault].after.end(), db) == 1);
}

TEST_CASE("a provider's lines are compose's protocol") {
  reconciler::ProviderOutput out;
  std::vector<std::string> info, debug;
  reconciler::ProviderLines lines{[&](const std::string& l) { info.push_back(l); },
                                  [&](const std::string& l) { debug.push_back(l); }};
  CHECK(reconciler::provider_line(R"({"type":"info","message":"creating\nmore"})", out, lines));
  CHECK(reconciler::provider_line(R"({"type":"debug","message":"d"})", out, lines));
  CHECK(reconciler::provider_line(R"({"type":"setenv","message":"URL=http://x/?a=b"})", out, lines));
  CHECK(reconciler::provider_line(R"({"type":"rawsetenv","message":"TOKEN=t"})", out, lines));
  CHECK(reconciler::provider_line("", out, lines));
  CHECK(info == std::vector<std::string>{"creating"});
  CHECK(debug == std::vector<std::string>{"d"});
  CHECK(out.env.at("URL") == "http://x/?a=b");
  CHECK(out.raw_env.at("TOKEN") == "t");
  auto error = reconciler::provider_line(R"({"type":"error","message":"quota exceeded"})", out, lines);
  REQUIRE(!error);
  CHECK(error.error().message == "quota exceeded");
  CHECK(!reconciler::provider_line("not json", out, lines));
  CHECK(!reconciler::provider_line(R"({"type":"setenv","message":"NOEQUALS"})", out, lines));
  auto unknown = reconciler::provider_line(R"({"type":"launch","message":"x"})", out, lines);
  REQUIRE(!unknown);
  CHECK(unknown.error().message == "invalid response from plugin: launch");
}

TEST_CASE("a provider's argv is compose's") {
  model::ProviderConfig c;
  c.type = "cloud";
  c.options = {{"size", "1"}, {"tag", "a"}, {"tag", "b"}};
  auto argv = reconciler::provider_argv("/bin/cloud", "demo", "up", "db", c);
  CHECK(argv == std::vector<std::string>{"/bin/cloud", "compose", "--project-name=demo", "up",
                                         "--size=1", "--tag=a", "--tag=b", "db"});
  c.type = "compose";
  CHECK(!reconciler::find_provider(c));
  c.type = "no-such-provider-xyz";
  c.environment = {{"PATH", "/nonexistent"}};
  auto missing = reconciler::find_provider(c);
  REQUIRE(!missing);
  CHECK(missing.error().message.find("executable file not found") != std::string::npos);
}

TEST_CASE("the state store keeps a provider's variables sealed and gives them back") {
  test::TempDir dir("provider-store");
  auto store = state::Store::open(dir.path() / "state.db");
  REQUIRE(store);
  state::ProviderRecord rec;
  rec.project = "demo";
  rec.service = "db";
  rec.config.type = "cloud";
  rec.config.options = {{"size", "1"}};
  rec.config.environment = {{"PATH", "/bin"}};
  rec.env = {{"PASSWORD", "s3cr3t-provider-value"}};
  rec.raw_env = {{"TOKEN", "t"}};
  REQUIRE((*store)->put_provider(rec));
  auto listed = (*store)->list_providers("demo");
  REQUIRE(listed);
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].env == rec.env);
  CHECK((*listed)[0].raw_env == rec.raw_env);
  CHECK((*listed)[0].config.options == rec.config.options);
  CHECK((*listed)[0].config.environment == rec.config.environment);
  store->reset();
  std::ifstream db(dir.path() / "state.db", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(db)), {});
  std::ifstream wal(dir.path() / "state.db-wal", std::ios::binary);
  bytes += std::string((std::istreambuf_iterator<char>(wal)), {});
  CHECK(bytes.find("s3cr3t-provider-value") == std::string::npos);
  store = state::Store::open(dir.path() / "state.db");
  REQUIRE(store);
  REQUIRE((*store)->remove_provider("demo", "db"));
  CHECK((*store)->list_providers("demo")->empty());
}
