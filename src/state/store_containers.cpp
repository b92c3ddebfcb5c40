// The state store's containers (see store.h): their records (the runtime record sealed), the
// history of replaced configurations (rollback) and pinned services. SQL only; the schema and
// its migrations are store.cpp's.
#include <sqlite3.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/runtime_codec.h"
#include "state/seal.h"
#include "state/sqlite.h"
#include "state/store.h"

namespace stack::state {

namespace {

using sql::db_error;
using sql::exec;
using sql::Statement;
using sql::Transaction;

constexpr const char* kContainerColumns =
    "name, project, service, number, config_hash, image, image_id, state, pid, pid_start_time, "
    "exit_code, oom_killed, restarts, created_at, started_at, finished_at, runtime_json, "
    "user_stopped, health, joined_started_at";

// Every column but the runtime record, which the store unseals and decodes (column 16).
ContainerRecord read_container(const Statement& s) {
  ContainerRecord c;
  c.name = s.text(0);
  c.project = s.text(1);
  c.service = s.text(2);
  c.number = static_cast<int>(s.int64(3));
  c.config_hash = s.text(4);
  c.image = s.text(5);
  c.image_id = s.text(6);
  c.state = parse_state(s.text(7)).value_or(ContainerState::kDead);  // the CHECK keeps it known
  c.pid = static_cast<pid_t>(s.int64(8));
  c.pid_start_time = static_cast<uint64_t>(s.int64(9));
  c.exit_code = static_cast<int>(s.int64(10));
  c.oom_killed = s.int64(11) != 0;
  c.restarts = static_cast<int>(s.int64(12));
  c.created_at = s.int64(13);
  c.started_at = s.int64(14);
  c.finished_at = s.int64(15);
  c.user_stopped = s.int64(17) != 0;
  c.health = s.text(18);
  c.joined_started_at = s.int64(19);
  return c;
}

// Records with their stored (sealed) runtime column, for the Store to unseal and decode.
Result<std::vector<std::pair<ContainerRecord, std::string>>> query_containers(
    sqlite3* db, const std::string& sql, std::optional<std::string_view> project) {
  Statement s(db, sql);
  if (project) s.bind(1, *project);
  std::vector<std::pair<ContainerRecord, std::string>> out;
  for (;;) {
    auto row = s.step();
    if (!row) return fail(row.error());
    if (!*row) break;
    out.emplace_back(read_container(s), s.text(16));
  }
  return out;
}

}  // namespace

Result<void> Store::put_container(const ContainerRecord& c) {
  const std::string ctx = "state: put container " + c.name;
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return fail(r.error().wrap(ctx));
  if (auto r = insert_container(c); !r) return fail(r.error().wrap(ctx));
  if (auto r = tx.commit(); !r) return fail(r.error().wrap(ctx));
  return {};
}

Result<void> Store::insert_container(const ContainerRecord& c) {
  // A record without a runtime (one that could not be read) keeps what is stored.
  std::string encoded = c.runtime ? encode_runtime(*c.runtime) : std::string();
  auto sealed = sealer_->seal(encoded, runtime_context(c.name));
  if (!sealed) return fail(sealed.error());
  const std::string& runtime = *sealed;
  Statement s(db_, std::string("INSERT OR REPLACE INTO containers (") + kContainerColumns +
                       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                       "?15, ?16, ?17, ?18, ?19, ?20)");
  s.bind(1, c.name)
      .bind(2, c.project)
      .bind(3, c.service)
      .bind(4, int64_t{c.number})
      .bind(5, c.config_hash)
      .bind(6, c.image)
      .bind(7, c.image_id)
      .bind(8, std::string(state_name(c.state)))
      .bind(9, int64_t{c.pid})
      .bind(10, static_cast<int64_t>(c.pid_start_time))
      .bind(11, int64_t{c.exit_code})
      .bind(12, int64_t{c.oom_killed ? 1 : 0})
      .bind(13, int64_t{c.restarts})
      .bind(14, c.created_at)
      .bind(15, c.started_at)
      .bind(16, c.finished_at)
      .bind(17, runtime)
      .bind(18, int64_t{c.user_stopped ? 1 : 0})
      .bind(19, c.health)
      .bind(20, c.joined_started_at);
  if (auto r = s.run(); !r) {
    if (s.extended_error() == SQLITE_CONSTRAINT_FOREIGNKEY)
      return fail("project " + c.project + " does not exist");
    if (s.extended_error() == SQLITE_CONSTRAINT_CHECK)
      return fail("invalid state \"" + std::string(state_name(c.state)) + "\"");
    return fail(r.error());
  }
  return {};
}

Result<std::optional<ContainerRecord>> Store::get_container(std::string_view name) {
  Statement s(db_, std::string("SELECT ") + kContainerColumns + " FROM containers WHERE name = ?1");
  s.bind(1, name);
  auto row = s.step();
  if (!row) return fail(row.error().wrap("state: get container " + std::string(name)));
  if (!*row) return std::optional<ContainerRecord>();
  ContainerRecord c = read_container(s);
  if (auto r = unseal(c, s.text(16)); !r) return fail(r.error().wrap("state: get container " + c.name));
  return std::optional<ContainerRecord>(std::move(c));
}

Result<std::vector<ContainerRecord>> Store::unseal_all(
    std::vector<std::pair<ContainerRecord, std::string>>& rows) const {
  std::vector<ContainerRecord> out;
  for (auto& [c, stored] : rows) {
    if (auto u = unseal(c, stored); !u) return fail(u.error().wrap("state: list containers"));
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::vector<ContainerRecord>> Store::list_containers(std::string_view project) {
  auto r = query_containers(db_,
                            std::string("SELECT ") + kContainerColumns +
                                " FROM containers WHERE project = ?1 ORDER BY service, number",
                            project);
  if (!r) return fail(r.error().wrap("state: list containers of " + std::string(project)));
  return unseal_all(*r);
}

Result<std::vector<ContainerRecord>> Store::list_all_containers() {
  auto r = query_containers(db_,
                            std::string("SELECT ") + kContainerColumns +
                                " FROM containers ORDER BY project, service, number",
                            std::nullopt);
  if (!r) return fail(r.error().wrap("state: list containers"));
  return unseal_all(*r);
}

Result<void> Store::remove_container(std::string_view name) {
  const std::string ctx = "state: remove container " + std::string(name);
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return fail(r.error().wrap(ctx));
  Statement s(db_, "DELETE FROM containers WHERE name = ?1");
  s.bind(1, name);
  if (auto r = s.run(); !r) return fail(r.error().wrap(ctx));
  if (auto r = tx.commit(); !r) return fail(r.error().wrap(ctx));
  return {};
}

Result<void> Store::rename_container(std::string_view from, const ContainerRecord& c) {
  const std::string ctx = "state: rename container " + std::string(from) + " to " + c.name;
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return fail(r.error().wrap(ctx));
  Statement d(db_, "DELETE FROM containers WHERE name = ?1");
  d.bind(1, from);
  if (auto r = d.run(); !r) return fail(r.error().wrap(ctx));
  Statement a(db_, "UPDATE ip_allocations SET owner = ?2 WHERE owner = ?1");
  a.bind(1, from).bind(2, c.name);
  if (auto r = a.run(); !r) return fail(r.error().wrap(ctx));
  if (auto r = insert_container(c); !r) return fail(r.error().wrap(ctx));
  if (auto r = tx.commit(); !r) return fail(r.error().wrap(ctx));
  return {};
}

Result<void> Store::put_history(const ContainerRecord& c, int64_t replaced_at) {
  const std::string ctx = "state: keep the previous configuration of " + c.name;
  if (!c.runtime) return {};  // nothing to roll back to
  auto sealed = sealer_->seal(encode_runtime(*c.runtime), history_context(c.project, c.service, c.number));
  if (!sealed) return fail(sealed.error().wrap(ctx));
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return fail(r.error().wrap(ctx));
  Statement s(db_, "INSERT OR REPLACE INTO history (project, service, number, config_hash, image, "
                   "image_id, runtime_json, replaced_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  s.bind(1, c.project).bind(2, c.service).bind(3, int64_t{c.number}).bind(4, c.config_hash)
      .bind(5, c.image).bind(6, c.image_id).bind(7, *sealed).bind(8, replaced_at);
  if (auto r = s.run(); !r) return fail(r.error().wrap(ctx));
  // The service's last kHistoryDepth configurations are kept, older ones go.
  Statement prune(db_, "DELETE FROM history WHERE project = ?1 AND service = ?2 AND config_hash "
                       "NOT IN (SELECT config_hash FROM history WHERE project = ?1 AND service = ?2 "
                       "GROUP BY config_hash ORDER BY max(replaced_at) DESC LIMIT ?3)");
  prune.bind(1, c.project).bind(2, c.service).bind(3, int64_t{kHistoryDepth});
  if (auto r = prune.run(); !r) return fail(r.error().wrap(ctx));
  if (auto r = tx.commit(); !r) return fail(r.error().wrap(ctx));
  return {};
}

Result<std::vector<HistoryRecord>> Store::list_history(std::string_view project,
                                                       std::string_view service) {
  Statement s(db_, "SELECT number, config_hash, image, image_id, runtime_json, replaced_at "
                   "FROM history WHERE project = ?1 AND service = ?2 "
                   "ORDER BY replaced_at DESC, number");
  s.bind(1, project).bind(2, service);
  std::vector<HistoryRecord> out;
  for (;;) {
    auto row = s.step();
    if (!row) return fail(row.error().wrap("state: history of " + std::string(service)));
    if (!*row) return out;
    HistoryRecord h;
    h.number = static_cast<int>(s.int64(0));
    h.config_hash = s.text(1);
    h.image = s.text(2);
    h.image_id = s.text(3);
    h.replaced_at = s.int64(5);
    auto plain = sealer_->unseal(s.text(4), history_context(project, service, h.number));
    if (!plain) return fail(plain.error().wrap("state: history of " + std::string(service)));
    auto decoded = decode_runtime(*plain);
    if (!decoded) continue;  // unreadable: not something to roll back to
    h.runtime = std::make_shared<const model::RuntimeRecord>(std::move(*decoded));
    out.push_back(std::move(h));
  }
}

Result<void> Store::put_pin(const PinRecord& p) {
  Statement s(db_, "INSERT OR REPLACE INTO pins (project, service, file_hash, pinned_hash) "
                   "VALUES (?1, ?2, ?3, ?4)");
  s.bind(1, p.project).bind(2, p.service).bind(3, p.file_hash).bind(4, p.pinned_hash);
  if (auto r = s.run(); !r) return fail(r.error().wrap("state: pin " + p.service));
  return {};
}

Result<std::vector<PinRecord>> Store::list_pins(std::string_view project) {
  Statement s(db_, "SELECT project, service, file_hash, pinned_hash FROM pins WHERE project = ?1");
  s.bind(1, project);
  std::vector<PinRecord> out;
  for (;;) {
    auto row = s.step();
    if (!row) return fail(row.error().wrap("state: pins of " + std::string(project)));
    if (!*row) return out;
    out.push_back({s.text(0), s.text(1), s.text(2), s.text(3)});
  }
}

Result<void> Store::remove_pin(std::string_view project, std::string_view service) {
  Statement s(db_, "DELETE FROM pins WHERE project = ?1 AND service = ?2");
  s.bind(1, project).bind(2, service);
  if (auto r = s.run(); !r) return fail(r.error().wrap("state: unpin " + std::string(service)));
  return {};
}

}  // namespace stack::state
