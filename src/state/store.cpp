// SQLite implementation of the state store: WAL, busy timeout, foreign keys, a schema versioned
// by PRAGMA user_version. Every value goes through a bound parameter; every change is one
// transaction. A Store (one connection) is used by one thread at a time. This file owns opening
// the database, the schema (kMigrations below: a new migration goes at its end) and projects;
// the other records are store_containers/networks/volumes/overrides/providers.cpp's.
#include "state/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <iterator>
#include <string_view>
#include <utility>

#include "common/unique_fd.h"
#include "state/runtime_codec.h"
#include "state/seal.h"
#include "state/sqlite.h"

namespace stack::state {

namespace {

using sql::db_error;
using sql::exec;
using sql::Statement;
using sql::Transaction;

// Schema migrations: migration I brings user_version from I to I+1. Append only; never edit
// a migration that has shipped.
constexpr std::string_view kMigrations[] = {
    R"sql(
CREATE TABLE projects (
  name             TEXT PRIMARY KEY NOT NULL,
  working_dir      TEXT NOT NULL,
  environment_json TEXT NOT NULL,
  created_at       INTEGER NOT NULL
) STRICT;
CREATE TABLE project_files (
  project  TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  path     TEXT NOT NULL,
  PRIMARY KEY (project, position)
) STRICT;
CREATE TABLE containers (
  name           TEXT PRIMARY KEY NOT NULL,
  project        TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
  service        TEXT NOT NULL,
  number         INTEGER NOT NULL,
  config_hash    TEXT NOT NULL,
  image          TEXT NOT NULL,
  image_id       TEXT NOT NULL,
  state          TEXT NOT NULL
                 CHECK (state IN ('created', 'running', 'restarting', 'exited', 'dead')),
  pid            INTEGER NOT NULL,
  pid_start_time INTEGER NOT NULL,
  exit_code      INTEGER NOT NULL,
  oom_killed     INTEGER NOT NULL,
  restarts       INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  started_at     INTEGER NOT NULL,
  finished_at    INTEGER NOT NULL,
  runtime_json   TEXT NOT NULL
) STRICT;
CREATE INDEX containers_by_project ON containers(project, service, number);
)sql",
    // 2: supervision. user_stopped: stopped by `stack stop`, so neither a restart policy nor
    // the continuous reconcile starts it again. health: "", starting, healthy or unhealthy.
    R"sql(
ALTER TABLE containers ADD COLUMN user_stopped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE containers ADD COLUMN health TEXT NOT NULL DEFAULT '';
)sql",
    // 3: networking. IPAM's allocations (net::AddressStore): one address per network and
    // owner, so a restarted daemon never hands out an address twice; and each network's
    // subnet and gateway, so that it keeps them (its bridge's route would otherwise make the
    // pool pick another subnet).
    R"sql(
CREATE TABLE networks (
  name    TEXT PRIMARY KEY NOT NULL,
  subnet  TEXT NOT NULL,
  gateway TEXT NOT NULL
) STRICT;
CREATE TABLE ip_allocations (
  network TEXT NOT NULL,
  owner   TEXT NOT NULL,
  address TEXT NOT NULL,
  PRIMARY KEY (network, owner)
) STRICT;
)sql",
    // 4: the plan of typed steps (issue 11). A network's project and the hash of the
    // definition it was made from (a changed one is made again with its containers); the start
    // time of the container whose network namespace a network_mode service:NAME one joined.
    R"sql(
ALTER TABLE networks ADD COLUMN project TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN config_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE containers ADD COLUMN joined_started_at INTEGER NOT NULL DEFAULT 0;
)sql",
    // 5: updates (issue 11). The runtime records a replica had before updates replaced it
    // (sealed like every runtime record; the last few configurations of each service), for
    // `stack rollback` and failure_action rollback;
    // and a service's pin: while the file still asks for FILE_HASH, the service keeps
    // PINNED_HASH (rolled back), or "" (an update paused after a failure: held as it is).
    R"sql(
CREATE TABLE history (
  project      TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
  service      TEXT NOT NULL,
  number       INTEGER NOT NULL,
  config_hash  TEXT NOT NULL,
  image        TEXT NOT NULL,
  image_id     TEXT NOT NULL,
  runtime_json TEXT NOT NULL,
  replaced_at  INTEGER NOT NULL,
  PRIMARY KEY (project, service, number, config_hash)
) STRICT;
CREATE TABLE pins (
  project     TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
  service     TEXT NOT NULL,
  file_hash   TEXT NOT NULL,
  pinned_hash TEXT NOT NULL,
  PRIMARY KEY (project, service)
) STRICT;
)sql",
    // 6: the services a project was brought up with (`up web`), one name a line; '' for all.
    R"sql(
ALTER TABLE projects ADD COLUMN services TEXT NOT NULL DEFAULT '';
)sql",
    // 7: named volumes (issue 13). Kept by `down`, removed by `down -v` or `stack volume rm`;
    // no foreign key to projects, which `down` removes. driver_opts and labels as JSON objects.
    R"sql(
CREATE TABLE volumes (
  name        TEXT PRIMARY KEY NOT NULL,
  project     TEXT NOT NULL,
  driver_opts TEXT NOT NULL,
  labels      TEXT NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;
)sql",
    // 8: what `scale`, `create` and `rm` changed since the last `up` (OverrideRecord).
    R"sql(
CREATE TABLE overrides (
  project  TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
  service  TEXT NOT NULL,
  replicas INTEGER NOT NULL,
  no_start INTEGER NOT NULL,
  removed  INTEGER NOT NULL,
  PRIMARY KEY (project, service)
) STRICT;
)sql",
    // 9: provider services (issue 13): what each one's `up` reported (its setenv variables,
    // sealed: they may hold credentials) and how to run its `down`. No foreign key to
    // projects: a provider runs before its project is registered, and `down` removes it.
    R"sql(
CREATE TABLE providers (
  project      TEXT NOT NULL,
  service      TEXT NOT NULL,
  type         TEXT NOT NULL,
  options_json TEXT NOT NULL,
  env_json     TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (project, service)
) STRICT;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

Result<int> user_version(sqlite3* db) {
  Statement s(db, "PRAGMA user_version");
  auto row = s.step();
  if (!row) return fail(row.error());
  if (!*row) return fail("PRAGMA user_version returned no row");
  return static_cast<int>(s.int64(0));
}

Result<void> migrate(sqlite3* db) {
  Transaction tx(db);
  if (auto r = tx.begin(); !r) return r;
  // Read inside the write transaction: two processes opening a new file at once must not both
  // run the same migration.
  auto version = user_version(db);
  if (!version) return fail(version.error());
  if (*version > kSchemaVersion)
    return fail("schema version " + std::to_string(*version) + " is newer than this stack (" +
                std::to_string(kSchemaVersion) + ")");
  for (int v = *version; v < kSchemaVersion; ++v) {
    std::string sql(kMigrations[v]);
    if (auto r = exec(db, sql.c_str()); !r)
      return fail(r.error().wrap("migration " + std::to_string(v + 1)));
  }
  if (*version != kSchemaVersion) {
    // PRAGMA takes no bound parameters; the value is our own constant.
    std::string sql = "PRAGMA user_version = " + std::to_string(kSchemaVersion);
    if (auto r = exec(db, sql.c_str()); !r) return r;
  }
  return tx.commit();
}

// Projects joined with their files, one row per file (or one row with NULL for no files),
// grouped back into records. One statement, so one consistent snapshot.
Result<std::vector<ProjectRecord>> query_projects(sqlite3* db,
                                                  std::optional<std::string_view> name,
                                                  const Sealer& sealer) {
  std::string sql =
      "SELECT p.name, p.working_dir, p.environment_json, p.created_at, f.path, p.services "
      "FROM projects p LEFT JOIN project_files f ON f.project = p.name ";
  if (name) sql += "WHERE p.name = ?1 ";
  sql += "ORDER BY p.name, f.position";
  Statement s(db, sql);
  if (name) s.bind(1, *name);
  std::vector<ProjectRecord> out;
  for (;;) {
    auto row = s.step();
    if (!row) return fail(row.error());
    if (!*row) break;
    std::string pname = s.text(0);
    if (out.empty() || out.back().name != pname) {
      ProjectRecord p;
      p.name = std::move(pname);
      p.working_dir = s.text(1);
      auto env = sealer.unseal(s.text(2), project_env_context(p.name));
      if (!env) return fail(env.error().wrap("environment of project " + p.name));
      p.environment_json = std::move(*env);
      p.created_at = s.int64(3);
      std::string services = s.text(5);  // names never hold a newline (spec: [a-zA-Z0-9._-])
      for (size_t at = 0, nl; at < services.size(); at = nl + 1) {
        nl = services.find('\n', at);
        if (nl == std::string::npos) nl = services.size();
        if (nl > at) p.services.push_back(services.substr(at, nl - at));
      }
      out.push_back(std::move(p));
    }
    if (!s.is_null(4)) out.back().files.push_back(s.text(4));
  }
  return out;
}

// The database and its -wal and -shm are root's alone: they hold every project's record. SQLite
// gives the -wal and -shm it creates the mode of the database file (os_unix.c,
// findCreateFileMode), so the database is made 0600 before SQLite first opens it; files an
// older version made 0644 are tightened.
Result<void> make_private_files(const std::filesystem::path& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string p = path.string() + suffix;
    int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (*suffix ? 0 : O_CREAT);
    UniqueFd fd(::open(p.c_str(), flags, 0600));
    if (!fd) {
      if (*suffix && errno == ENOENT) continue;
      return fail_errno("open " + p);
    }
    if (::fchmod(fd.get(), 0600) != 0) return fail_errno("chmod " + p);
  }
  return {};
}

}  // namespace

Store::Store(sqlite3* db) : db_(db) {}

Store::~Store() { sqlite3_close_v2(db_); }

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& path) {
  const std::string ctx = "state: open " + path.string();
  if (auto r = make_private_files(path); !r) return fail(r.error().wrap(ctx));
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  // Own the handle at once: sqlite3_open_v2 returns one even on failure.
  std::unique_ptr<Store> store(new Store(db));
  if (rc != SQLITE_OK) {
    if (!db) return fail(ctx + ": " + sqlite3_errstr(rc));
    return fail(db_error(db).wrap(ctx));
  }
  sqlite3_extended_result_codes(db, 1);
  // The timeout first: switching to WAL itself needs a lock another process may hold.
  sqlite3_busy_timeout(db, 5000);
  {
    Statement s(db, "PRAGMA journal_mode = WAL");
    auto row = s.step();
    if (!row) return fail(row.error().wrap(ctx + ": enable WAL"));
    if (!*row || s.text(0) != "wal")
      return fail(ctx + ": enable WAL: journal mode is " + (*row ? s.text(0) : "unknown"));
  }
  if (auto r = exec(db, "PRAGMA foreign_keys = ON"); !r) return fail(r.error().wrap(ctx));
  // Freed content is overwritten: a value replaced (or sealed in place of its plain text) leaves
  // no copy in free pages.
  if (auto r = exec(db, "PRAGMA secure_delete = ON"); !r) return fail(r.error().wrap(ctx));
  // NORMAL is durable across process crashes in WAL mode; only power loss may lose the last
  // commits.
  if (auto r = exec(db, "PRAGMA synchronous = NORMAL"); !r) return fail(r.error().wrap(ctx));
  if (auto r = migrate(db); !r) return fail(r.error().wrap(ctx + ": migrate schema"));
  if (auto r = store->open_sealer(path.parent_path() / "state.key"); !r)
    return fail(r.error().wrap(ctx));
  if (auto r = store->seal_plain_rows(); !r) return fail(r.error().wrap(ctx + ": seal old rows"));
  return store;
}

Result<void> Store::put_project(const ProjectRecord& p) {
  const std::string ctx = "state: put project " + p.name;
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return fail(r.error().wrap(ctx));
  // An upsert, not INSERT OR REPLACE: a replace deletes the row and would cascade to the
  // project's containers.
  Statement up(db_,
               "INSERT INTO projects (name, working_dir, environment_json, created_at, services) "
               "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET "
               "working_dir = excluded.working_dir, "
               "environment_json = excluded.environment_json, created_at = excluded.created_at, "
               "services = excluded.services");
  auto env = sealer_->seal(p.environment_json, project_env_context(p.name));
  if (!env) return fail(env.error().wrap(ctx));
  std::string services;
  for (const auto& s : p.services) services += s + "\n";
  up.bind(1, p.name).bind(2, p.working_dir).bind(3, *env).bind(4, p.created_at).bind(5, services);
  if (auto r = up.run(); !r) return fail(r.error().wrap(ctx));
  Statement del(db_, "DELETE FROM project_files WHERE project = ?1");
  del.bind(1, p.name);
  if (auto r = del.run(); !r) return fail(r.error().wrap(ctx));
  for (size_t i = 0; i < p.files.size(); ++i) {
    Statement ins(db_, "INSERT INTO project_files (project, position, path) VALUES (?1, ?2, ?3)");
    ins.bind(1, p.name).bind(2, static_cast<int64_t>(i)).bind(3, p.files[i]);
    if (auto r = ins.run(); !r) return fail(r.error().wrap(ctx));
  }
  if (auto r = tx.commit(); !r) return fail(r.error().wrap(ctx));
  return {};
}

Result<std::optional<ProjectRecord>> Store::get_project(std::string_view name) {
  auto r = query_projects(db_, name, *sealer_);
  if (!r) return fail(r.error().wrap("state: get project " + std::string(name)));
  if (r->empty()) return std::optional<ProjectRecord>();
  return std::optional<ProjectRecord>(std::move(r->front()));
}

Result<std::vector<ProjectRecord>> Store::list_projects() {
  auto r = query_projects(db_, std::nullopt, *sealer_);
  if (!r) return fail(r.error().wrap("state: list projects"));
  return r;
}

Result<void> Store::remove_project(std::string_view name) {
  const std::string ctx = "state: remove project " + std::string(name);
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return fail(r.error().wrap(ctx));
  // Foreign keys cascade to files and containers; deleting the containers explicitly as well
  // keeps this correct even on a connection where foreign keys were left off.
  Statement dc(db_, "DELETE FROM containers WHERE project = ?1");
  dc.bind(1, name);
  if (auto r = dc.run(); !r) return fail(r.error().wrap(ctx));
  Statement dp(db_, "DELETE FROM projects WHERE name = ?1");
  dp.bind(1, name);
  if (auto r = dp.run(); !r) return fail(r.error().wrap(ctx));
  if (auto r = tx.commit(); !r) return fail(r.error().wrap(ctx));
  return {};
}

}  // namespace stack::state
