// The state store's provider services (see store.h): one row per provider whose `up`
// succeeded, until its project's `down`. The variables and the project environment are
// sealed (a provider's setenv often carries a credential); type and options are not secret.
#include <nlohmann/json.hpp>

#include "state/seal.h"
#include "state/sqlite.h"
#include "state/store.h"

namespace stack::state {

namespace {

using sql::Statement;

std::string context(std::string_view project, std::string_view service) {
  return "providers/" + std::string(project) + "/" + std::string(service);
}

std::map<std::string, std::string> strings(const nlohmann::json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

}  // namespace

Result<void> Store::put_provider(const ProviderRecord& p) {
  std::string ctx = "state: put provider " + p.project + "/" + p.service;
  nlohmann::json options = nlohmann::json::array();
  for (const auto& [k, v] : p.config.options) options.push_back({k, v});
  nlohmann::json open = {{"options", options}, {"working_dir", p.config.working_dir}};
  nlohmann::json secret = {{"env", p.env}, {"raw_env", p.raw_env},
                           {"environment", p.config.environment}};
  auto sealed = sealer_->seal(secret.dump(), context(p.project, p.service));
  if (!sealed) return fail(sealed.error().wrap(ctx));
  Statement s(db_,
              "INSERT OR REPLACE INTO providers (project, service, type, options_json, env_json, "
              "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  s.bind(1, p.project).bind(2, p.service).bind(3, p.config.type).bind(4, open.dump());
  s.bind(5, *sealed).bind(6, p.created_at);
  if (auto r = s.run(); !r) return fail(r.error().wrap(ctx));
  return {};
}

Result<std::vector<ProviderRecord>> Store::list_providers(std::string_view project) {
  Statement s(db_,
              "SELECT project, service, type, options_json, env_json, created_at FROM providers "
              "WHERE project = ?1 ORDER BY service");
  s.bind(1, project);
  std::vector<ProviderRecord> out;
  for (;;) {
    auto r = s.step();
    if (!r) return fail(r.error().wrap("state: list providers"));
    if (!*r) return out;
    ProviderRecord p;
    p.project = s.text(0);
    p.service = s.text(1);
    p.config.type = s.text(2);
    auto open = nlohmann::json::parse(s.text(3), nullptr, false);
    if (open.is_object()) {
      for (const auto& kv : open.value("options", nlohmann::json::array()))
        if (kv.is_array() && kv.size() == 2 && kv[0].is_string() && kv[1].is_string())
          p.config.options.emplace_back(kv[0].get<std::string>(), kv[1].get<std::string>());
      if (open.contains("working_dir") && open["working_dir"].is_string())
        p.config.working_dir = open["working_dir"].get<std::string>();
    }
    auto plain = sealer_->unseal(s.text(4), context(p.project, p.service));
    if (!plain) return fail(plain.error().wrap("state: provider " + p.project + "/" + p.service));
    auto secret = nlohmann::json::parse(*plain, nullptr, false);
    if (secret.is_object()) {
      p.env = strings(secret.value("env", nlohmann::json::object()));
      p.raw_env = strings(secret.value("raw_env", nlohmann::json::object()));
      p.config.environment = strings(secret.value("environment", nlohmann::json::object()));
    }
    p.created_at = s.int64(5);
    out.push_back(std::move(p));
  }
}

Result<void> Store::remove_provider(std::string_view project, std::string_view service) {
  Statement s(db_, "DELETE FROM providers WHERE project = ?1 AND service = ?2");
  s.bind(1, project).bind(2, service);
  if (auto r = s.run(); !r)
    return fail(r.error().wrap("state: remove provider " + std::string(project) + "/" +
                               std::string(service)));
  return {};
}

}  // namespace stack::state
