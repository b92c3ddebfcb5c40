// placement_of(): the deploy fields of a spec::Service read into a ServicePlacement, each
// problem reported at the key that says it. Constraint syntax is Swarm's (swarmkit's
// constraint.Parse: "==" looked for before "!=", the same key and value alphabets), so a file
// Swarm takes is taken here, and one it refuses is refused with a reason.
#include "cluster/placement.h"

#include <cctype>
#include <cmath>

#include "spec/diagnostics.h"
#include "spec/stack.h"

namespace stack::cluster {
namespace {

constexpr std::string_view kLabels = "node.labels.";

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Swarm's key alphabet: a letter or '_', then at least one of [a-z0-9-_.], any case.
bool valid_key(std::string_view k) {
  if (k.size() < 2) return false;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!std::isalpha(static_cast<unsigned char>(k[0])) && k[0] != '_') return false;
  for (char c : k.substr(1))
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

// Swarm's value alphabet: no operator characters (<, >, ~, =, !), so that none can be added
// later with a different meaning.
bool valid_value(std::string_view v) {
  static constexpr std::string_view kExtra = ":-_.*()?+[]\\^$|/";
  if (v.empty()) return false;
  for (char c : v)
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        !std::isspace(static_cast<unsigned char>(c)) && kExtra.find(c) == std::string_view::npos)
      return false;
  return true;
}

std::string in_quotes(std::string_view s) {
  std::string out(1, '"');
  out.append(s);
  out.push_back('"');
  return out;
}

spec::SourcePos key_pos(const spec::Service& s, const std::string& key) {
  std::string path = "services." + s.name + "." + key;
  for (const spec::KeyUse& k : s.keys)
    if (k.path == path) return k.pos;
  return s.pos;
}

bool written(const spec::Service& s, const std::string& key) {
  std::string path = "services." + s.name + "." + key;
  for (const spec::KeyUse& k : s.keys)
    if (k.path == path) return true;
  return false;
}

void read_placement(const spec::Service& s, const nlohmann::json& placement, ServicePlacement& out,
                    spec::Diagnostics& diag) {
  const std::string where = "services." + s.name + ".deploy.placement.";
  if (auto c = placement.find("constraints"); c != placement.end() && c->is_array()) {
    for (size_t i = 0; i < c->size(); ++i) {
      const auto& item = (*c)[i];
      std::string text = item.is_string() ? item.get<std::string>() : item.dump();
      auto parsed = parse_constraint(text);
      if (parsed)
        out.constraints.push_back(*parsed);
      else
        diag.error(key_pos(s, "deploy.placement.constraints"),
                   where + "constraints[" + std::to_string(i) + "] " + in_quotes(text) + ": " +
                       parsed.error().message);
    }
  }
  if (auto p = placement.find("preferences"); p != placement.end() && p->is_array()) {
    for (size_t i = 0; i < p->size(); ++i) {
      const auto& item = (*p)[i];
      std::string text = item.is_object() && item.contains("spread") && item["spread"].is_string()
                             ? item["spread"].get<std::string>()
                             : std::string();
      auto label = parse_spread(text);
      if (label)
        out.spread.push_back(*label);
      else
        diag.error(key_pos(s, "deploy.placement.preferences"),
                   where + "preferences[" + std::to_string(i) + "] spread " + in_quotes(text) +
                       ": " + label.error().message);
    }
  }
  if (auto m = placement.find("max_replicas_per_node");
      m != placement.end() && m->is_number_integer()) {
    int64_t max = m->get<int64_t>();
    if (max < 0)
      diag.error(key_pos(s, "deploy.placement.max_replicas_per_node"),
                 where + "max_replicas_per_node " + std::to_string(max) + ": must be 0 or more");
    else if (out.global)
      diag.error(key_pos(s, "deploy.placement.max_replicas_per_node"),
                 where +
                     "max_replicas_per_node: only with deploy.mode replicated (global runs "
                     "one per node)");
    else
      out.max_replicas_per_node = static_cast<int>(std::min<int64_t>(max, 1 << 20));
  }
}

void read_reservations(const spec::Service& s, const nlohmann::json& r, ServicePlacement& out,
                       spec::Diagnostics& diag) {
  const std::string where = "services." + s.name + ".deploy.resources.reservations.";
  if (auto c = r.find("cpus"); c != r.end() && c->is_number()) {
    double cpus = c->get<double>();
    if (!(cpus >= 0) || cpus > 1e6)
      diag.error(key_pos(s, "deploy.resources.reservations.cpus"),
                 where + "cpus " + c->dump() + ": must be 0 or more");
    else
      out.reservations.nano_cpus = std::llround(cpus * 1e9);
  }
  if (auto m = r.find("memory"); m != r.end() && m->is_number_integer()) {
    int64_t bytes = m->get<int64_t>();
    if (bytes < 0)
      diag.error(key_pos(s, "deploy.resources.reservations.memory"),
                 where + "memory: must be 0 or more");
    else
      out.reservations.memory_bytes = bytes;
  }
}

ServicePlacement read(const spec::Stack& stack, const spec::Service& s, spec::Diagnostics& diag) {
  ServicePlacement out;
  out.project = stack.name;
  out.name = s.name;
  out.replicas = s.replicas;
  auto d = s.extra.find("deploy");
  if (d == s.extra.end() || !d->is_object()) return out;
  if (auto mode = d->find("mode"); mode != d->end()) {
    std::string m = mode->is_string() ? mode->get<std::string>() : mode->dump();
    if (m == "global")
      out.global = true;
    else if (m != "replicated")
      diag.error(key_pos(s, "deploy.mode"),
                 "services." + s.name + ".deploy.mode " + m + ": expected replicated or global");
  }
  if (out.global && (written(s, "deploy.replicas") || written(s, "scale")))
    diag.error(key_pos(s, written(s, "scale") ? "scale" : "deploy.replicas"),
               "services." + s.name +
                   ": replicas only with deploy.mode replicated (global runs one per node)");
  if (auto p = d->find("placement"); p != d->end() && p->is_object())
    read_placement(s, *p, out, diag);
  if (auto r = d->find("resources"); r != d->end() && r->is_object())
    if (auto res = r->find("reservations"); res != r->end() && res->is_object())
      read_reservations(s, *res, out, diag);
  return out;
}

}  // namespace

Result<Constraint> parse_constraint(std::string_view text) {
  for (auto [op, sym] :
       {std::pair{Constraint::Op::eq, "=="}, std::pair{Constraint::Op::ne, "!="}}) {
    size_t at = text.find(sym);
    if (at == std::string_view::npos) continue;
    std::string_view key = trim(text.substr(0, at));
    std::string_view value = trim(text.substr(at + 2));
    if (!valid_key(key)) return fail("key " + in_quotes(key) + " is invalid");
    if (!valid_value(value)) return fail("value " + in_quotes(value) + " is invalid");
    Constraint c{std::string(key), op, std::string(value), std::string(text)};
    std::string k = lower(key);
    if (k.size() > kLabels.size() && k.compare(0, kLabels.size(), kLabels) == 0) {
      c.key = std::string(kLabels) + std::string(key.substr(kLabels.size()));  // name as written
      return c;
    }
    if (k == "node.hostname" || k == "node.id" || k == "node.role") {
      c.key = k;
      return c;
    }
    if (k.rfind("engine.labels.", 0) == 0)
      return fail(
          "engine labels are Docker's: a stack node has node labels (node.labels.NAME, "
          "set by stack node update --label-add)");
    return fail("unknown key " + in_quotes(key) +
                " (known: node.hostname, node.id, node.role, node.labels.NAME)");
  }
  return fail("expected one operator from ==, !=");
}

Result<std::string> parse_spread(std::string_view text) {
  std::string_view t = trim(text);
  if (t.size() > kLabels.size() && lower(t.substr(0, kLabels.size())) == kLabels && valid_key(t))
    return std::string(t.substr(kLabels.size()));
  return fail("expected node.labels.NAME");
}

Result<ServicePlacement> placement_of(const spec::Stack& stack, const spec::Service& service) {
  spec::Diagnostics diag(stack.file_names);
  ServicePlacement out = read(stack, service, diag);
  if (diag.has_errors()) return fail(diag.to_error());
  return out;
}

Result<std::vector<ServicePlacement>> placements_of(const spec::Stack& stack) {
  spec::Diagnostics diag(stack.file_names);
  std::vector<ServicePlacement> out;
  for (const spec::Service& s : stack.services) out.push_back(read(stack, s, diag));
  if (diag.has_errors()) return fail(diag.to_error());
  return out;
}

}  // namespace stack::cluster
