// See merge.h. The per-field rules are a table keyed by the service field name so later
// fields (ports, labels, ...) add a line, not a branch.
#include "spec/merge.h"

#include <functional>
#include <map>
#include <optional>
#include <unordered_map>

namespace stack::spec {
namespace {

void merge_node(Node& base, const Node& over);

// environment / depends_on lists as mappings so they can merge by key; nullopt when the
// value has a shape the validator will reject anyway.
std::optional<Node> as_keyed_mapping(const Node& n, bool split_equals) {
  if (n.is_mapping()) return n;
  if (!n.is_sequence()) return std::nullopt;
  Node out;
  out.kind = Node::Kind::mapping;
  out.pos = n.pos;
  KeyIndex index(out);
  for (const Node& item : n.items) {
    if (!item.is_scalar()) return std::nullopt;
    Node value;
    value.pos = item.pos;
    std::string key = item.value;
    if (split_equals) {
      size_t eq = key.find('=');
      if (eq != std::string::npos) {
        value.kind = Node::Kind::scalar;
        value.value = key.substr(eq + 1);
        key.resize(eq);
      }
    } else {
      value.kind = Node::Kind::mapping;
    }
    if (Node* existing = index.find(key))
      *existing = value;
    else
      index.append(Entry{key, item.pos, value});
  }
  return out;
}

void merge_by_key(Node& base, const Node& over, bool split_equals) {
  auto b = as_keyed_mapping(base, split_equals);
  auto o = as_keyed_mapping(over, split_equals);
  if (!b || !o) {
    base = over;
    return;
  }
  KeyIndex index(*b);
  for (const Entry& e : o->entries) {
    if (Node* existing = index.find(e.key))
      *existing = e.value;
    else
      index.append(e);
  }
  base = std::move(*b);
}

std::optional<std::string> mount_target(const Node& n) {
  if (n.is_mapping()) {
    const Node* t = n.find("target");
    if (t && t->is_scalar()) return t->value;
    return std::nullopt;
  }
  if (!n.is_scalar()) return std::nullopt;
  size_t first = n.value.find(':');
  if (first == std::string::npos) return n.value;
  size_t second = n.value.find(':', first + 1);
  return n.value.substr(first + 1,
                        second == std::string::npos ? std::string::npos : second - first - 1);
}

void merge_volumes(Node& base, const Node& over) {
  if (!base.is_sequence() || !over.is_sequence()) {
    base = over;
    return;
  }
  std::unordered_map<std::string, size_t> by_target;  // the first of each target, as a scan
  for (size_t i = 0; i < base.items.size(); ++i)
    if (auto t = mount_target(base.items[i])) by_target.emplace(*t, i);
  for (const Node& item : over.items) {
    auto target = mount_target(item);
    auto it = target ? by_target.find(*target) : by_target.end();
    if (it != by_target.end()) {
      base.items[it->second] = item;
    } else {
      if (target) by_target.emplace(*target, base.items.size());
      base.items.push_back(item);
    }
  }
}

void append_list(Node& base, const Node& over) {
  if (base.is_scalar()) {
    Node single = base;
    base = Node{};
    base.kind = Node::Kind::sequence;
    base.pos = single.pos;
    base.items.push_back(single);
  }
  if (!base.is_sequence()) {
    base = over;
    return;
  }
  if (over.is_sequence())
    base.items.insert(base.items.end(), over.items.begin(), over.items.end());
  else
    base.items.push_back(over);
}

using FieldMerge = std::function<void(Node&, const Node&)>;

void merge_hosts(Node& base, const Node& over) {
  if (base.is_mapping() && over.is_mapping())
    merge_node(base, over);
  else
    append_list(base, over);
}

// `build: ./dir` is `build: {context: ./dir}`; args merge by key.
void merge_build(Node& base, const Node& over) {
  auto as_mapping = [](const Node& n) {
    if (!n.is_scalar()) return n;
    Node m;
    m.kind = Node::Kind::mapping;
    m.pos = n.pos;
    m.entries.push_back(Entry{"context", n.pos, n});
    return m;
  };
  Node b = as_mapping(base);
  Node o = as_mapping(over);
  if (!b.is_mapping() || !o.is_mapping()) {
    base = over;
    return;
  }
  for (const Entry& e : o.entries) {
    Node* existing = b.find(e.key);
    if (existing == nullptr)
      b.entries.push_back(e);
    else if (e.key == "args" || e.key == "labels")
      merge_by_key(*existing, e.value, true);
    else
      merge_node(*existing, e.value);
  }
  base = std::move(b);
}

const std::map<std::string, FieldMerge>& service_rules() {
  static std::map<std::string, FieldMerge> rules = {
      {"command", [](Node& b, const Node& o) { b = o; }},
      {"entrypoint", [](Node& b, const Node& o) { b = o; }},
      {"environment", [](Node& b, const Node& o) { merge_by_key(b, o, true); }},
      {"depends_on", [](Node& b, const Node& o) { merge_by_key(b, o, false); }},
      {"volumes", merge_volumes},
      {"env_file", append_list},
      {"labels", [](Node& b, const Node& o) { merge_by_key(b, o, true); }},
      {"annotations", [](Node& b, const Node& o) { merge_by_key(b, o, true); }},
      {"sysctls", [](Node& b, const Node& o) { merge_by_key(b, o, true); }},
      {"networks", [](Node& b, const Node& o) { merge_by_key(b, o, false); }},
      {"extra_hosts", merge_hosts},
      {"healthcheck", merge_node},
      {"build", merge_build},
  };
  // Sets: the override adds entries.
  static const bool appended = [] {
    for (const char* key : {"ports", "expose", "dns", "dns_search", "dns_opt", "tmpfs", "cap_add",
                            "cap_drop", "security_opt", "external_links", "links", "volumes_from",
                            "devices", "secrets", "configs", "group_add", "profiles",
                            "device_cgroup_rules", "label_file"})
      rules[key] = append_list;
    return true;
  }();
  (void)appended;
  return rules;
}

}  // namespace

void merge_service(Node& base, const Node& over) {
  if (!base.is_mapping() || !over.is_mapping()) {
    base = over;
    return;
  }
  KeyIndex index(base);
  for (const Entry& e : over.entries) {
    Node* existing = index.find(e.key);
    if (existing == nullptr) {
      index.append(e);
      continue;
    }
    auto rule = service_rules().find(e.key);
    if (rule != service_rules().end())
      rule->second(*existing, e.value);
    else
      merge_node(*existing, e.value);
  }
}

namespace {

void merge_node(Node& base, const Node& over) {
  if (!base.is_mapping() || !over.is_mapping()) {
    base = over;
    return;
  }
  KeyIndex index(base);
  for (const Entry& e : over.entries) {
    if (Node* existing = index.find(e.key))
      merge_node(*existing, e.value);
    else
      index.append(e);
  }
}

}  // namespace

void merge_files(Node& base, const Node& override_file) {
  if (!base.is_mapping() || !override_file.is_mapping()) {
    merge_node(base, override_file);
    return;
  }
  KeyIndex top(base);
  for (const Entry& e : override_file.entries) {
    Node* existing = top.find(e.key);
    if (existing == nullptr) {
      top.append(e);
    } else if (e.key == "services" && existing->is_mapping() && e.value.is_mapping()) {
      KeyIndex services(*existing);
      for (const Entry& svc : e.value.entries) {
        if (Node* s = services.find(svc.key))
          merge_service(*s, svc.value);
        else
          services.append(svc);
      }
    } else {
      merge_node(*existing, e.value);
    }
  }
}

}  // namespace stack::spec
