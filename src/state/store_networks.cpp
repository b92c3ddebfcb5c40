// The state store's networks and their address allocations (see store.h). SQL only; the schema
// and its migrations are store.cpp's.
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

}  // namespace

Result<void> Store::put_network(const NetworkRecord& n) {
  const std::string ctx = "state: put network " + n.name;
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return fail(r.error().wrap(ctx));
  Statement s(db_, "INSERT OR REPLACE INTO networks (name, subnet, gateway, project, config_hash) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)");
  s.bind(1, n.name).bind(2, n.subnet).bind(3, n.gateway).bind(4, n.project).bind(5, n.config_hash);
  if (auto r = s.run(); !r) return fail(r.error().wrap(ctx));
  if (auto r = tx.commit(); !r) return fail(r.error().wrap(ctx));
  return {};
}

Result<std::optional<NetworkRecord>> Store::get_network(std::string_view name) {
  Statement s(db_, "SELECT name, subnet, gateway, project, config_hash FROM networks WHERE name = ?1");
  s.bind(1, name);
  auto row = s.step();
  if (!row) return fail(row.error().wrap("state: get network " + std::string(name)));
  if (!*row) return std::optional<NetworkRecord>();
  return std::optional<NetworkRecord>(
      NetworkRecord{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4)});
}

Result<std::vector<NetworkRecord>> Store::list_networks(std::string_view project) {
  Statement s(db_, "SELECT name, subnet, gateway, project, config_hash FROM networks "
                   "WHERE project = ?1 ORDER BY name");
  s.bind(1, project);
  std::vector<NetworkRecord> out;
  for (;;) {
    auto row = s.step();
    if (!row) return fail(row.error().wrap("state: list networks of " + std::string(project)));
    if (!*row) return out;
    out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4)});
  }
}

Result<std::vector<NetworkRecord>> Store::list_all_networks() {
  Statement s(db_, "SELECT name, subnet, gateway, project, config_hash FROM networks ORDER BY name");
  std::vector<NetworkRecord> out;
  for (;;) {
    auto row = s.step();
    if (!row) return fail(row.error().wrap("state: list networks"));
    if (!*row) return out;
    out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4)});
  }
}

Result<void> Store::remove_network(std::string_view name) {
  const std::string ctx = "state: remove network " + std::string(name);
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return fail(r.error().wrap(ctx));
  Statement s(db_, "DELETE FROM networks WHERE name = ?1");
  s.bind(1, name);
  if (auto r = s.run(); !r) return fail(r.error().wrap(ctx));
  Statement a(db_, "DELETE FROM ip_allocations WHERE network = ?1");
  a.bind(1, name);
  if (auto r = a.run(); !r) return fail(r.error().wrap(ctx));
  if (auto r = tx.commit(); !r) return fail(r.error().wrap(ctx));
  return {};
}

Result<void> Store::put_allocation(const AllocationRecord& a) {
  const std::string ctx = "state: put allocation " + a.network + "/" + a.owner;
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return fail(r.error().wrap(ctx));
  Statement s(db_, "INSERT OR REPLACE INTO ip_allocations (network, owner, address) "
                   "VALUES (?1, ?2, ?3)");
  s.bind(1, a.network).bind(2, a.owner).bind(3, a.address);
  if (auto r = s.run(); !r) return fail(r.error().wrap(ctx));
  if (auto r = tx.commit(); !r) return fail(r.error().wrap(ctx));
  return {};
}

Result<std::vector<AllocationRecord>> Store::list_allocations(std::string_view network) {
  Statement s(db_, "SELECT network, owner, address FROM ip_allocations WHERE network = ?1 "
                   "ORDER BY owner");
  s.bind(1, network);
  std::vector<AllocationRecord> out;
  for (;;) {
    auto row = s.step();
    if (!row) return fail(row.error().wrap("state: list allocations of " + std::string(network)));
    if (!*row) break;
    out.push_back({s.text(0), s.text(1), s.text(2)});
  }
  return out;
}

Result<void> Store::erase_allocation(std::string_view network, std::string_view owner) {
  const std::string ctx =
      "state: erase allocation " + std::string(network) + "/" + std::string(owner);
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return fail(r.error().wrap(ctx));
  Statement s(db_, "DELETE FROM ip_allocations WHERE network = ?1 AND owner = ?2");
  s.bind(1, network).bind(2, owner);
  if (auto r = s.run(); !r) return fail(r.error().wrap(ctx));
  if (auto r = tx.commit(); !r) return fail(r.error().wrap(ctx));
  return {};
}

}  // namespace stack::state
