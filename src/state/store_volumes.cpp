// The state store's named volumes (see store.h): one row per volume, kept across `down`.
#include <nlohmann/json.hpp>

#include "state/sqlite.h"
#include "state/store.h"

namespace stack::state {

namespace {

using sql::Statement;

std::string to_json(const std::map<std::string, std::string>& m) {
  return nlohmann::json(m).dump();
}

std::map<std::string, std::string> from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

VolumeRecord row(Statement& s) {
  return {s.text(0), s.text(1), from_json(s.text(2)), from_json(s.text(3)), s.int64(4)};
}

constexpr const char* kColumns = "name, project, driver_opts, labels, created_at";

}  // namespace

Result<void> Store::put_volume(const VolumeRecord& v) {
  Statement s(db_, std::string("INSERT OR REPLACE INTO volumes (") + kColumns +
                       ") VALUES (?1, ?2, ?3, ?4, ?5)");
  s.bind(1, v.name).bind(2, v.project).bind(3, to_json(v.driver_opts)).bind(4, to_json(v.labels));
  s.bind(5, v.created_at);
  if (auto r = s.run(); !r) return fail(r.error().wrap("state: put volume " + v.name));
  return {};
}

Result<std::optional<VolumeRecord>> Store::get_volume(std::string_view name) {
  Statement s(db_, std::string("SELECT ") + kColumns + " FROM volumes WHERE name = ?1");
  s.bind(1, name);
  auto r = s.step();
  if (!r) return fail(r.error().wrap("state: get volume " + std::string(name)));
  if (!*r) return std::optional<VolumeRecord>();
  return std::optional<VolumeRecord>(row(s));
}

Result<std::vector<VolumeRecord>> Store::list_volumes(std::string_view project) {
  Statement s(db_, std::string("SELECT ") + kColumns +
                       " FROM volumes WHERE ?1 = '' OR project = ?1 ORDER BY name");
  s.bind(1, project);
  std::vector<VolumeRecord> out;
  for (;;) {
    auto r = s.step();
    if (!r) return fail(r.error().wrap("state: list volumes"));
    if (!*r) return out;
    out.push_back(row(s));
  }
}

Result<void> Store::remove_volume(std::string_view name) {
  Statement s(db_, "DELETE FROM volumes WHERE name = ?1");
  s.bind(1, name);
  if (auto r = s.run(); !r)
    return fail(r.error().wrap("state: remove volume " + std::string(name)));
  return {};
}

}  // namespace stack::state
