#include <doctest/doctest.h>
#include <sqlite3.h>

#include "state/store.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::state;

namespace {

ProjectRecord a_project(const std::string& name) {
  ProjectRecord p;
  p.name = name;
  p.files = {"/srv/" + name + "/stack.yaml", "/srv/" + name + "/stack.override.yaml"};
  p.working_dir = "/srv/" + name;
  p.environment_json = R"({"TAG":"1.2"})";
  p.created_at = 1700000000123;
  return p;
}

ContainerRecord a_container(const std::string& project, const std::string& service, int n) {
  ContainerRecord c;
  c.name = project + "-" + service + "-" + std::to_string(n);
  c.project = project;
  c.service = service;
  c.number = n;
  c.config_hash = "abc123";
  c.image = "busybox:latest";
  c.image_id = "sha256:deadbeef";
  c.state = ContainerState::kRunning;
  c.pid = 4242;
  c.pid_start_time = 18446744073709551000ULL;  // above INT64_MAX: stored bit for bit
  c.exit_code = 137;
  c.oom_killed = true;
  c.restarts = 3;
  c.created_at = 1700000000001;
  c.started_at = 1700000000002;
  c.finished_at = 1700000000003;
  auto rt = std::make_shared<stack::model::RuntimeRecord>();
  rt->spec.name = c.name;
  rt->spec.process.argv = {"sleep", "300"};
  rt->spec.process.env = {"A=1"};
  rt->config_hash = "abc123";
  c.runtime = rt;
  c.user_stopped = true;
  c.health = "healthy";
  return c;
}

std::unique_ptr<Store> open_store(const std::filesystem::path& path) {
  auto s = Store::open(path);
  REQUIRE_MESSAGE(s, (s ? "" : s.error().message));
  return std::move(*s);
}

void check_same(const ContainerRecord& a, const ContainerRecord& b) {
  CHECK(a.name == b.name);
  CHECK(a.project == b.project);
  CHECK(a.service == b.service);
  CHECK(a.number == b.number);
  CHECK(a.config_hash == b.config_hash);
  CHECK(a.image == b.image);
  CHECK(a.image_id == b.image_id);
  CHECK(a.state == b.state);
  CHECK(a.pid == b.pid);
  CHECK(a.pid_start_time == b.pid_start_time);
  CHECK(a.exit_code == b.exit_code);
  CHECK(a.oom_killed == b.oom_killed);
  CHECK(a.restarts == b.restarts);
  CHECK(a.created_at == b.created_at);
  CHECK(a.started_at == b.started_at);
  CHECK(a.finished_at == b.finished_at);
  REQUIRE(a.runtime);
  REQUIRE(b.runtime);
  CHECK(a.runtime->spec.process.argv == b.runtime->spec.process.argv);
  CHECK(a.runtime->spec.process.env == b.runtime->spec.process.env);
  CHECK(a.runtime->config_hash == b.runtime->config_hash);
  CHECK(a.user_stopped == b.user_stopped);
  CHECK(a.health == b.health);
}

}  // namespace

TEST_CASE("store: a project round-trips, files in order") {
  test::TempDir dir;
  auto store = open_store(dir / "state.db");
  REQUIRE(store->put_project(a_project("demo")));
  auto got = store->get_project("demo");
  REQUIRE(got);
  REQUIRE(got->has_value());
  const ProjectRecord& p = **got;
  CHECK(p.name == "demo");
  CHECK(p.files ==
        std::vector<std::string>{"/srv/demo/stack.yaml", "/srv/demo/stack.override.yaml"});
  CHECK(p.working_dir == "/srv/demo");
  CHECK(p.environment_json == R"({"TAG":"1.2"})");
  CHECK(p.created_at == 1700000000123);
  CHECK(p.services.empty());  // every service

  auto some = a_project("some");
  some.services = {"db", "web"};
  REQUIRE(store->put_project(some));
  CHECK((*store->get_project("some"))->services == std::vector<std::string>{"db", "web"});

  auto missing = store->get_project("nope");
  REQUIRE(missing);
  CHECK(!missing->has_value());
}

TEST_CASE("store: putting a project twice updates it and keeps its containers") {
  test::TempDir dir;
  auto store = open_store(dir / "state.db");
  REQUIRE(store->put_project(a_project("demo")));
  REQUIRE(store->put_container(a_container("demo", "web", 1)));
  auto p = a_project("demo");
  p.files = {"/elsewhere/stack.yaml"};
  p.working_dir = "/elsewhere";
  REQUIRE(store->put_project(p));
  auto got = store->get_project("demo");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->files == std::vector<std::string>{"/elsewhere/stack.yaml"});
  CHECK((*got)->working_dir == "/elsewhere");
  CHECK(store->list_projects()->size() == 1);
  CHECK(store->list_containers("demo")->size() == 1);
}

TEST_CASE("store: a project with no files") {
  test::TempDir dir;
  auto store = open_store(dir / "state.db");
  auto p = a_project("bare");
  p.files.clear();
  REQUIRE(store->put_project(p));
  auto got = store->get_project("bare");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->files.empty());
}

TEST_CASE("store: a container round-trips and put replaces it") {
  test::TempDir dir;
  auto store = open_store(dir / "state.db");
  REQUIRE(store->put_project(a_project("demo")));
  auto c = a_container("demo", "web", 1);
  REQUIRE(store->put_container(c));
  auto got = store->get_container("demo-web-1");
  REQUIRE(got);
  REQUIRE(got->has_value());
  check_same(**got, c);

  c.state = ContainerState::kExited;
  c.pid = 0;
  c.exit_code = 0;
  c.oom_killed = false;
  REQUIRE(store->put_container(c));
  got = store->get_container("demo-web-1");
  REQUIRE(got);
  REQUIRE(got->has_value());
  check_same(**got, c);
  CHECK(store->list_all_containers()->size() == 1);

  auto missing = store->get_container("demo-web-9");
  REQUIRE(missing);
  CHECK(!missing->has_value());
}

TEST_CASE("store: containers are listed by project, ordered by service and number") {
  test::TempDir dir;
  auto store = open_store(dir / "state.db");
  REQUIRE(store->put_project(a_project("a")));
  REQUIRE(store->put_project(a_project("b")));
  REQUIRE(store->put_container(a_container("a", "web", 2)));
  REQUIRE(store->put_container(a_container("a", "db", 1)));
  REQUIRE(store->put_container(a_container("a", "web", 1)));
  REQUIRE(store->put_container(a_container("b", "web", 1)));

  auto a = store->list_containers("a");
  REQUIRE(a);
  REQUIRE(a->size() == 3);
  CHECK((*a)[0].name == "a-db-1");
  CHECK((*a)[1].name == "a-web-1");
  CHECK((*a)[2].name == "a-web-2");
  CHECK(store->list_containers("b")->size() == 1);
  CHECK(store->list_containers("c")->empty());
  CHECK(store->list_all_containers()->size() == 4);

  auto projects = store->list_projects();
  REQUIRE(projects);
  REQUIRE(projects->size() == 2);
  CHECK((*projects)[0].name == "a");
  CHECK((*projects)[0].files.size() == 2);
  CHECK((*projects)[1].name == "b");

  REQUIRE(store->remove_container("a-web-2"));
  CHECK(store->list_containers("a")->size() == 2);
  REQUIRE(store->remove_container("a-web-2"));  // missing: not an error
}

TEST_CASE("store: remove_project removes its containers and no other") {
  test::TempDir dir;
  auto store = open_store(dir / "state.db");
  REQUIRE(store->put_project(a_project("a")));
  REQUIRE(store->put_project(a_project("b")));
  REQUIRE(store->put_container(a_container("a", "web", 1)));
  REQUIRE(store->put_container(a_container("a", "db", 1)));
  REQUIRE(store->put_container(a_container("b", "web", 1)));
  REQUIRE(store->remove_project("a"));
  CHECK(!store->get_project("a")->has_value());
  CHECK(store->list_containers("a")->empty());
  CHECK(!store->get_container("a-web-1")->has_value());
  CHECK(store->get_project("b")->has_value());
  CHECK(store->list_all_containers()->size() == 1);
}

TEST_CASE("store: a container of an unknown project is refused with context") {
  test::TempDir dir;
  auto store = open_store(dir / "state.db");
  auto r = store->put_container(a_container("ghost", "web", 1));
  REQUIRE(!r);
  CHECK(r.error().message == "state: put container ghost-web-1: project ghost does not exist");
}

TEST_CASE("container states: the transition table, and what it refuses") {
  using S = ContainerState;
  CHECK(can_transition(S::kCreated, S::kRunning));
  CHECK(can_transition(S::kRunning, S::kExited));
  CHECK(can_transition(S::kRunning, S::kRestarting));
  CHECK(can_transition(S::kRestarting, S::kRunning));
  CHECK(can_transition(S::kExited, S::kRunning));
  CHECK_FALSE(can_transition(S::kRunning, S::kRunning));
  CHECK_FALSE(can_transition(S::kCreated, S::kRestarting));
  CHECK_FALSE(can_transition(S::kDead, S::kRunning));
  auto c = a_container("demo", "web", 1);
  auto r = c.transition(S::kRunning, "start");
  REQUIRE(!r);
  CHECK(r.error().message == "demo-web-1: cannot start a running container");
  CHECK(c.state == S::kRunning);
  CHECK(parse_state("restarting") == S::kRestarting);
  CHECK_FALSE(parse_state("sleeping"));
}

TEST_CASE("store: a runtime record that cannot be decoded still lists its container") {
  test::TempDir dir;
  auto store = open_store(dir / "state.db");
  REQUIRE(store->put_project(a_project("demo")));
  auto c = a_container("demo", "web", 1);
  c.runtime.reset();  // stored as an empty (undecodable) record
  REQUIRE(store->put_container(c));
  auto back = store->get_container("demo-web-1");
  REQUIRE(back);
  REQUIRE(*back);
  CHECK(!(*back)->runtime);
  CHECK((*back)->runtime_error.find("corrupt runtime record") != std::string::npos);
  CHECK(store->list_containers("demo")->size() == 1);
}

TEST_CASE("store: values with quotes are stored as given (bound, not spliced)") {
  test::TempDir dir;
  auto store = open_store(dir / "state.db");
  auto p = a_project("it's");
  p.environment_json = R"({"X":"'); DROP TABLE projects; --"})";
  REQUIRE(store->put_project(p));
  auto got = store->get_project("it's");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->environment_json == p.environment_json);
}

TEST_CASE("store: data survives reopening the file, and the schema is versioned") {
  test::TempDir dir;
  {
    auto store = open_store(dir / "state.db");
    REQUIRE(store->put_project(a_project("demo")));
    REQUIRE(store->put_container(a_container("demo", "web", 1)));
  }
  auto store = open_store(dir / "state.db");
  CHECK(store->get_project("demo")->has_value());
  auto c = store->get_container("demo-web-1");
  REQUIRE(c);
  REQUIRE(c->has_value());
  check_same(**c, a_container("demo", "web", 1));

  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir / "state.db").c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 9);  // 9: providers
  sqlite3_finalize(st);
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_CASE("store: a database from a newer stack is refused") {
  test::TempDir dir;
  { auto store = open_store(dir / "state.db"); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir / "state.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto r = Store::open(dir / "state.db");
  REQUIRE(!r);
  CHECK(r.error().message.find("schema version 99 is newer") != std::string::npos);
}

TEST_CASE("store: two stores on one file see each other's writes") {
  test::TempDir dir;
  auto one = open_store(dir / "state.db");
  auto two = open_store(dir / "state.db");
  REQUIRE(one->put_project(a_project("demo")));
  CHECK(two->get_project("demo")->has_value());
  REQUIRE(two->put_container(a_container("demo", "web", 1)));
  auto c = one->get_container("demo-web-1");
  REQUIRE(c);
  CHECK(c->has_value());
  REQUIRE(one->remove_project("demo"));
  CHECK(two->list_all_containers()->empty());
}

TEST_CASE("store: opening in a missing directory fails with the path") {
  auto r = Store::open("/nonexistent-dir/state.db");
  REQUIRE(!r);
  CHECK(r.error().message.find("state: open /nonexistent-dir/state.db") == 0);
}

TEST_CASE("a version 1 database is migrated and keeps its rows") {
  test::TempDir dir;
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir / "state.db").c_str(), &db) == SQLITE_OK);
  // The schema as version 1 shipped it, with one project and container.
  const char* v1 = R"sql(
CREATE TABLE projects (name TEXT PRIMARY KEY NOT NULL, working_dir TEXT NOT NULL,
  environment_json TEXT NOT NULL, created_at INTEGER NOT NULL) STRICT;
CREATE TABLE project_files (project TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
  position INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY (project, position)) STRICT;
CREATE TABLE containers (name TEXT PRIMARY KEY NOT NULL,
  project TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE, service TEXT NOT NULL,
  number INTEGER NOT NULL, config_hash TEXT NOT NULL, image TEXT NOT NULL, image_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('created', 'running', 'restarting', 'exited', 'dead')),
  pid INTEGER NOT NULL, pid_start_time INTEGER NOT NULL, exit_code INTEGER NOT NULL,
  oom_killed INTEGER NOT NULL, restarts INTEGER NOT NULL, created_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL, finished_at INTEGER NOT NULL, runtime_json TEXT NOT NULL) STRICT;
INSERT INTO projects VALUES ('old', '/srv', '{}', 1);
INSERT INTO containers VALUES ('old-web-1', 'old', 'web', 1, 'h', 'busybox:latest', 'sha256:x',
  'running', 42, 7, 0, 0, 0, 1, 2, 0, '{}');
PRAGMA user_version = 1;
)sql";
  REQUIRE(sqlite3_exec(db, v1, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto store = state::Store::open(dir / "state.db");
  REQUIRE(store);
  auto c = (*store)->get_container("old-web-1").value();
  REQUIRE(c);
  CHECK(c->pid == 42);
  CHECK(c->user_stopped == false);
  CHECK(c->health == "");
}

TEST_CASE("store: IP allocations are put, listed per network, replaced and erased") {
  test::TempDir dir;
  {
    auto store = open_store(dir / "state.db");
    REQUIRE(store->put_allocation({"demo_default", "demo-web-1", "10.89.0.2"}));
    REQUIRE(store->put_allocation({"demo_default", "demo-db-1", "10.89.0.3"}));
    REQUIRE(store->put_allocation({"demo_back", "demo-db-1", "10.89.1.2"}));
    REQUIRE(store->put_allocation({"demo_default", "demo-web-1", "10.89.0.4"}));  // replaced
  }
  auto store = open_store(dir / "state.db");
  auto rows = store->list_allocations("demo_default");
  REQUIRE(rows);
  REQUIRE(rows->size() == 2);
  CHECK((*rows)[0].owner == "demo-db-1");
  CHECK((*rows)[1].address == "10.89.0.4");
  REQUIRE(store->erase_allocation("demo_default", "demo-db-1"));
  REQUIRE(store->erase_allocation("demo_default", "nobody"));  // a no-op
  CHECK(store->list_allocations("demo_default")->size() == 1);
  CHECK(store->list_allocations("demo_back")->size() == 1);
}

TEST_CASE("store: a network's subnet is kept: removing the network drops its allocations") {
  test::TempDir dir;
  auto store = open_store(dir / "state.db");
  REQUIRE(store->put_network({"demo_default", "10.89.0.0/24", "10.89.0.1"}));
  REQUIRE(store->put_allocation({"demo_default", "demo-web-1", "10.89.0.2"}));
  auto n = store->get_network("demo_default");
  REQUIRE(n);
  REQUIRE(n->has_value());
  CHECK((*n)->subnet == "10.89.0.0/24");
  CHECK((*n)->gateway == "10.89.0.1");
  CHECK_FALSE(store->get_network("other")->has_value());
  REQUIRE(store->remove_network("demo_default"));
  CHECK_FALSE(store->get_network("demo_default")->has_value());
  CHECK(store->list_allocations("demo_default")->empty());
}

TEST_CASE("store: overrides round-trip, are cleared per service or whole, and go with the project") {
  test::TempDir dir;
  auto store = open_store(dir / "state.db");
  REQUIRE(store->put_project(a_project("demo")));
  REQUIRE(store->put_override({"demo", "web", 3, false, false}));
  REQUIRE(store->put_override({"demo", "db", -1, true, false}));
  REQUIRE(store->put_override({"demo", "web", 4, false, true}));  // replaces
  auto list = store->list_overrides("demo");
  REQUIRE(list);
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].service == "db");
  CHECK((*list)[0].no_start);
  CHECK((*list)[0].replicas == -1);
  CHECK((*list)[1].replicas == 4);
  CHECK((*list)[1].removed);
  REQUIRE(store->remove_overrides("demo", "db"));
  CHECK(store->list_overrides("demo")->size() == 1);
  REQUIRE(store->remove_overrides("demo", ""));
  CHECK(store->list_overrides("demo")->empty());
  REQUIRE(store->put_override({"demo", "web", 2, false, false}));
  REQUIRE(store->put_project(a_project("demo")));  // an upsert keeps them
  CHECK(store->list_overrides("demo")->size() == 1);
  REQUIRE(store->remove_project("demo"));
  CHECK(store->list_overrides("demo")->empty());
}
