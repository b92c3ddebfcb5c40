// The project record as JSON. Constraints travel as written and are parsed again on decoding
// (placement.h), so one parser decides what they mean.
#include "cluster/project_record.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "cluster/placement.h"

namespace stack::cluster {

using nlohmann::json;

std::string encode_project(const ProjectRecord& p) {
  json services = json::array();
  for (const auto& s : p.placements) {
    json constraints = json::array();
    for (const auto& c : s.constraints) constraints.push_back(c.text);
    services.push_back({{"name", s.name},
                        {"global", s.global},
                        {"replicas", s.replicas},
                        {"constraints", constraints},
                        {"spread", s.spread},
                        {"max_replicas_per_node", s.max_replicas_per_node},
                        {"nano_cpus", s.reservations.nano_cpus},
                        {"memory_bytes", s.reservations.memory_bytes}});
  }
  return json{{"name", p.name}, {"hash", p.hash}, {"spec", p.spec}, {"services", services}}.dump();
}

Result<ProjectRecord> decode_project(std::string_view text, std::string_view what) {
  json doc = json::parse(text, nullptr, false);
  auto bad = [&](const std::string& why) { return fail(std::string(what) + ": " + why); };
  if (doc.is_discarded() || !doc.is_object()) return bad("not a JSON object");
  ProjectRecord p;
  try {
    p.name = doc.at("name").get<std::string>();
    p.hash = doc.at("hash").get<std::string>();
    p.spec = doc.at("spec").get<std::string>();
    for (const auto& s : doc.at("services")) {
      ServicePlacement sp;
      sp.project = p.name;
      sp.name = s.at("name").get<std::string>();
      sp.global = s.value("global", false);
      sp.replicas = s.value("replicas", 1);
      for (const auto& c : s.value("constraints", json::array())) {
        auto parsed = parse_constraint(c.get<std::string>());
        if (!parsed) return bad("service " + sp.name + ": " + parsed.error().message);
        sp.constraints.push_back(std::move(*parsed));
      }
      sp.spread = s.value("spread", std::vector<std::string>{});
      sp.max_replicas_per_node = s.value("max_replicas_per_node", 0);
      sp.reservations.nano_cpus = s.value("nano_cpus", int64_t{0});
      sp.reservations.memory_bytes = s.value("memory_bytes", int64_t{0});
      p.placements.push_back(std::move(sp));
    }
  } catch (const json::exception& e) {
    return bad(e.what());
  }
  return p;
}

namespace {

// "<project>/<service>/<slot>"
bool parse_slot_path(std::string_view key, SlotKey& out) {
  auto a = key.find('/');
  if (a == std::string_view::npos) return false;
  auto b = key.find('/', a + 1);
  if (b == std::string_view::npos) return false;
  out.project = std::string(key.substr(0, a));
  out.service = std::string(key.substr(a + 1, b - a - 1));
  auto num = key.substr(b + 1);
  auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), out.slot);
  return ec == std::errc() && ptr == num.data() + num.size() && out.slot > 0 &&
         !out.project.empty() && !out.service.empty();
}

}  // namespace

bool parse_assign_key(std::string_view key, SlotKey& out) {
  if (key.substr(0, kAssignPrefix.size()) != kAssignPrefix) return false;
  return parse_slot_path(key.substr(kAssignPrefix.size()), out);
}

bool parse_node_assign_key(std::string_view key, std::string& node, SlotKey& out) {
  if (key.substr(0, kNodeAssignPrefix.size()) != kNodeAssignPrefix) return false;
  key.remove_prefix(kNodeAssignPrefix.size());
  auto slash = key.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  node = std::string(key.substr(0, slash));
  return parse_slot_path(key.substr(slash + 1), out);
}

}  // namespace stack::cluster
