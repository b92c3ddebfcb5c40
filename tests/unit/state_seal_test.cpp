// Secrets in the state database: the columns holding environment values are sealed on disk
// (AES-256-GCM, state/seal.h), read back plain, and rows an older version wrote in the clear
// are sealed on open with their plain text gone from the database file and its WAL.
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "state/seal.h"
#include "state/runtime_codec.h"
#include "state/store.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::state;
namespace fs = std::filesystem;

namespace {

constexpr const char* kSecret = "tok-5f1c0a9e-never-in-the-clear";

std::unique_ptr<Store> open_store(const fs::path& path) {
  auto s = Store::open(path);
  REQUIRE_MESSAGE(s, (s ? "" : s.error().message));
  return std::move(*s);
}

ProjectRecord a_project() {
  ProjectRecord p;
  p.name = "shop";
  p.files = {"/srv/shop/stack.yaml"};
  p.working_dir = "/srv/shop";
  p.environment_json = std::string(R"({"TOKEN":")") + kSecret + "\"}";
  return p;
}

model::RuntimeRecord a_runtime() {
  model::RuntimeRecord r;
  r.spec.name = "shop-web-1";
  r.spec.process.argv = {"serve"};
  r.spec.process.env = {std::string("TOKEN=") + kSecret};
  return r;
}

ContainerRecord a_container(const std::string& name) {
  ContainerRecord c;
  c.name = name;
  c.project = "shop";
  c.service = "web";
  c.runtime = std::make_shared<const model::RuntimeRecord>(a_runtime());
  return c;
}

std::vector<std::string> env_of(const ContainerRecord& c) {
  return c.runtime ? c.runtime->spec.process.env : std::vector<std::string>{};
}

// Whether any of the database's files holds TEXT, byte for byte (what `grep -a` would find).
bool on_disk(const fs::path& db, const std::string& text) {
  for (const char* suffix : {"", "-wal", "-shm"})
    if (test::read_text(db.string() + suffix).find(text) != std::string::npos) return true;
  return false;
}

// Runs SQL on the database file directly, as an older stack (or an attacker with the file).
void raw_sql(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(h);
  REQUIRE_MESSAGE(rc == SQLITE_OK, msg);
}

std::string raw_value(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(st) == SQLITE_ROW)
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

}  // namespace

TEST_CASE("store: environment values are sealed on disk and read back plain") {
  test::TempDir dir("stack-seal");
  const fs::path db = dir / "state.db";
  auto store = open_store(db);
  REQUIRE(store->put_project(a_project()));
  REQUIRE(store->put_container(a_container("shop-web-1")));

  CHECK_FALSE(on_disk(db, kSecret));
  CHECK(on_disk(db, "shop-web-1"));  // the files are read at all: names are not secret
  CHECK(store->get_project("shop")->value().environment_json == a_project().environment_json);
  CHECK(env_of(store->get_container("shop-web-1")->value()) == a_runtime().spec.process.env);
  CHECK(env_of(store->list_containers("shop")->front()) == a_runtime().spec.process.env);
  CHECK(store->list_projects()->front().environment_json == a_project().environment_json);

  struct stat st {};
  REQUIRE(::stat((dir / "state.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(st.st_size == 32);
  CHECK(raw_value(db, "SELECT runtime_json FROM containers").rfind("sealed:v1:", 0) == 0);

  // Another store on the same file (the CLI beside the daemon) reads with the same key.
  auto second = open_store(db);
  CHECK(second->get_project("shop")->value().environment_json == a_project().environment_json);
}

TEST_CASE("store: rows an older version wrote in the clear read back, and are sealed and wiped") {
  test::TempDir dir("stack-seal");
  const fs::path db = dir / "state.db";
  {
    auto store = open_store(db);
    REQUIRE(store->put_project(a_project()));
    REQUIRE(store->put_container(a_container("shop-web-1")));
  }
  // What a version without sealing left: plain JSON in both columns, in the file and its WAL.
  raw_sql(db, std::string("UPDATE projects SET environment_json = '{\"TOKEN\":\"") + kSecret +
                  "\"}'; UPDATE containers SET runtime_json = '" + encode_runtime(a_runtime()) +
                  "'");
  REQUIRE(on_disk(db, kSecret));

  auto store = open_store(db);
  CHECK(store->get_project("shop")->value().environment_json == a_project().environment_json);
  CHECK(env_of(store->get_container("shop-web-1")->value()) == a_runtime().spec.process.env);
  CHECK_FALSE(on_disk(db, kSecret));
  CHECK(raw_value(db, "SELECT environment_json FROM projects").rfind("sealed:v1:", 0) == 0);
}

TEST_CASE("store: a sealed value copied to another row does not unseal there") {
  test::TempDir dir("stack-seal");
  const fs::path db = dir / "state.db";
  {
    auto store = open_store(db);
    REQUIRE(store->put_project(a_project()));
    REQUIRE(store->put_container(a_container("shop-web-1")));
    auto other = a_container("shop-web-2");
    other.runtime = std::make_shared<const model::RuntimeRecord>();
    REQUIRE(store->put_container(other));
  }
  raw_sql(db,
          "UPDATE containers SET runtime_json = (SELECT runtime_json FROM containers WHERE "
          "name = 'shop-web-1') WHERE name = 'shop-web-2'");
  auto store = open_store(db);
  auto r = store->get_container("shop-web-2");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("shop-web-2") != std::string::npos);
  CHECK(r.error().message.find("authentication failed") != std::string::npos);
}

TEST_CASE("store: a lost key is reported, never replaced while sealed rows need it") {
  test::TempDir dir("stack-seal");
  const fs::path db = dir / "state.db";
  {
    auto store = open_store(db);
    REQUIRE(store->put_project(a_project()));
  }
  fs::remove(dir / "state.key");
  auto r = Store::open(db);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("state.key is missing") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "state.key"));
}

TEST_CASE("sealer: round trip, binding to its context, damage and newer formats refused") {
  Sealer::Key key{};
  key[0] = 7;
  Sealer s(key);
  for (std::string plain :
       {std::string(), std::string("x"), std::string(5000, 'y'), std::string("nul\0inside", 10)}) {
    auto sealed = s.seal(plain, "ctx");
    REQUIRE(sealed);
    CHECK(Sealer::is_sealed(*sealed));
    if (plain.size() > 4) CHECK(sealed->find(plain) == std::string::npos);
    CHECK(s.unseal(*sealed, "ctx").value() == plain);
    CHECK_FALSE(s.unseal(*sealed, "other"));
  }
  auto a = s.seal("same", "ctx"), b = s.seal("same", "ctx");
  CHECK(*a != *b);  // a fresh nonce each time
  std::string damaged = *a;
  damaged[damaged.size() - 3] = damaged[damaged.size() - 3] == 'A' ? 'B' : 'A';
  CHECK_FALSE(s.unseal(damaged, "ctx"));
  CHECK_FALSE(s.unseal("sealed:v1:not-base64!", "ctx"));
  auto newer = s.unseal("sealed:v2:AAAA", "ctx");
  REQUIRE_FALSE(newer);
  CHECK(newer.error().message.find("sealed:v2") != std::string::npos);
  Sealer::Key other_key{};
  CHECK_FALSE(Sealer(other_key).unseal(*a, "ctx"));
  CHECK(s.unseal("{\"plain\":1}", "ctx").value() == "{\"plain\":1}");
}
