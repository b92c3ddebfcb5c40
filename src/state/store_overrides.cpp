// The state store's overrides (see OverrideRecord in store.h): one row per project and service,
// written by `scale`, `create` and `rm`, cleared by `up`; gone with the project.
#include "state/sqlite.h"
#include "state/store.h"

namespace stack::state {

using sql::Statement;

Result<void> Store::put_override(const OverrideRecord& o) {
  Statement s(db_, "INSERT OR REPLACE INTO overrides (project, service, replicas, no_start, removed) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)");
  s.bind(1, o.project).bind(2, o.service).bind(3, static_cast<int64_t>(o.replicas));
  s.bind(4, static_cast<int64_t>(o.no_start)).bind(5, static_cast<int64_t>(o.removed));
  if (auto r = s.run(); !r) return fail(r.error().wrap("state: override of " + o.service));
  return {};
}

Result<std::vector<OverrideRecord>> Store::list_overrides(std::string_view project) {
  Statement s(db_, "SELECT project, service, replicas, no_start, removed FROM overrides "
                   "WHERE project = ?1 ORDER BY service");
  s.bind(1, project);
  std::vector<OverrideRecord> out;
  for (;;) {
    auto row = s.step();
    if (!row) return fail(row.error().wrap("state: overrides of " + std::string(project)));
    if (!*row) return out;
    out.push_back({s.text(0), s.text(1), static_cast<int>(s.int64(2)), s.int64(3) != 0,
                   s.int64(4) != 0});
  }
}

Result<void> Store::remove_overrides(std::string_view project, std::string_view service) {
  Statement s(db_, "DELETE FROM overrides WHERE project = ?1 AND (?2 = '' OR service = ?2)");
  s.bind(1, project).bind(2, service);
  if (auto r = s.run(); !r) return fail(r.error().wrap("state: clear overrides of " + std::string(project)));
  return {};
}

}  // namespace stack::state
