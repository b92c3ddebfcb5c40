// schedule(): two passes over the services in key order. The first keeps what may stay (ready
// node, constraints, max per node, scale-down, then reservations in slot order, so a kept slot
// is never evicted by a new one); the second places what is missing, through the spread tree
// of each service, with a min-heap of nodes at each leaf. No I/O, no clock, no randomness.
#include "cluster/scheduler.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <queue>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>

namespace stack::cluster {
namespace {

constexpr std::string_view kLabelPrefix = "node.labels.";

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The node's value for KEY; a node without the label has the empty value (Swarm's rule: `!=`
// matches it, `==` does not). FOUND is false for a key no node has.
std::string_view attribute(const std::string& key, const Node& node, bool& found) {
  found = true;
  if (key.size() > kLabelPrefix.size() &&
      iequals(key.substr(0, kLabelPrefix.size()), kLabelPrefix)) {
    auto it = node.labels.find(key.substr(kLabelPrefix.size()));  // label names: case-sensitive
    return it == node.labels.end() ? std::string_view() : std::string_view(it->second);
  }
  if (iequals(key, "node.hostname")) return node.name;
  if (iequals(key, "node.id")) return node.id.empty() ? node.name : node.id;
  if (iequals(key, "node.role")) return node.role;
  found = false;
  return {};
}

bool fits(const Resources& want, const Resources& free) {
  return want.nano_cpus <= free.nano_cpus && want.memory_bytes <= free.memory_bytes;
}

bool reserves(const Resources& r) { return r.nano_cpus > 0 || r.memory_bytes > 0; }

std::string plural(size_t n, const char* what) {
  return std::to_string(n) + (n == 1 ? " node" : " nodes") + what;
}

class Scheduler {
 public:
  explicit Scheduler(const SchedulerInput& in) : in_(in) {
    for (const Node& n : in.nodes) nodes_.push_back(&n);
    std::sort(nodes_.begin(), nodes_.end(),
              [](const Node* a, const Node* b) { return a->name < b->name; });
    nodes_.erase(std::unique(nodes_.begin(), nodes_.end(),
                             [](const Node* a, const Node* b) { return a->name == b->name; }),
                 nodes_.end());
    for (size_t i = 0; i < nodes_.size(); ++i) {
      index_.emplace(nodes_[i]->name, static_cast<int>(i));
      free_.push_back(nodes_[i]->capacity);
    }
    tasks_.assign(nodes_.size(), 0);
    count_.assign(nodes_.size(), 0);
    for (const ServicePlacement& s : in.services)
      services_.emplace(service_key(s.project, s.name), &s);  // the first of a duplicate wins
    // Load before this pass, for the scale-down tie-break (a node's total is not known yet
    // while the first pass walks the services).
    before_.assign(nodes_.size(), 0);
    for (const auto& [_, slots] : in.current)
      for (const auto& [slot, node] : slots)
        if (int i = find(node); i >= 0) before_[i]++;
  }

  Schedule run() {
    std::map<std::string, std::vector<int>> dropped;  // service → slots to place again first
    for (const auto& [key, s] : services_) dropped[key] = keep(key, *s);
    for (const auto& [key, s] : services_) place(key, *s, dropped[key]);
    count_changes();
    return std::move(out_);
  }

 private:
  int find(const std::string& node) const {
    auto it = index_.find(node);
    return it == index_.end() ? -1 : it->second;
  }
  bool eligible(const ServicePlacement& s, int i) const {
    return nodes_[i]->ready && satisfies(s.constraints, *nodes_[i]);
  }
  bool can_take(const ServicePlacement& s, int i) const {
    if (s.max_replicas_per_node > 0 && count_[i] >= s.max_replicas_per_node) return false;
    return !reserves(s.reservations) || fits(s.reservations, free_[i]);
  }
  void take(const ServicePlacement& s, int i) {
    count_[i]++;
    tasks_[i]++;
    free_[i].nano_cpus -= s.reservations.nano_cpus;
    free_[i].memory_bytes -= s.reservations.memory_bytes;
  }

  // The first pass for one service: its current slots that may stay are taken (counted on
  // their nodes); returns the slots dropped because their node can no longer hold them.
  std::vector<int> keep(const std::string& key, const ServicePlacement& s) {
    std::vector<std::pair<int, int>> kept;  // slot, node
    std::vector<int> dropped;
    auto cur = in_.current.find(key);
    if (cur != in_.current.end()) {
      for (const auto& [slot, node] : cur->second) {
        int i = find(node);
        bool ok = i >= 0 && slot > 0 && eligible(s, i);
        if (ok && s.global) ok = count_[i] == 0;
        if (ok && !s.global && s.max_replicas_per_node > 0)
          ok = count_[i] < s.max_replicas_per_node;
        if (!ok) {
          if (slot > 0) dropped.push_back(slot);
          continue;
        }
        kept.emplace_back(slot, i);
        count_[i]++;
      }
    }
    if (!s.global) scale_down(s, kept);
    SlotMap& slots = out_.assignments[key];
    for (auto [slot, i] : kept) count_[i]--;
    for (auto [slot, i] : kept) {  // slot order: the lowest slots keep their room first
      if (!can_take(s, i)) {
        dropped.push_back(slot);
        continue;
      }
      take(s, i);
      slots.emplace(slot, nodes_[i]->name);
    }
    for (auto [slot, i] : kept) count_[i] = 0;
    if (slots.empty()) out_.assignments.erase(key);
    std::sort(dropped.begin(), dropped.end());
    return dropped;
  }

  // More slots than replicas: remove from the node holding most of the service's slots (then
  // the most loaded, then the first by name), its highest slot first.
  void scale_down(const ServicePlacement& s, std::vector<std::pair<int, int>>& kept) {
    int excess = static_cast<int>(kept.size()) - std::max(s.replicas, 0);
    auto rank = [&](const std::pair<int, int>& k) {  // the greatest goes first
      return std::make_tuple(count_[k.second], before_[k.second], -k.second, k.first);
    };
    while (excess-- > 0) {
      size_t victim = 0;
      for (size_t k = 1; k < kept.size(); ++k)
        if (rank(kept[k]) > rank(kept[victim])) victim = k;
      count_[kept[victim].second]--;
      kept.erase(kept.begin() + static_cast<long>(victim));
    }
  }

  // The second pass for one service.
  void place(const std::string& key, const ServicePlacement& s, const std::vector<int>& dropped) {
    SlotMap& slots = out_.assignments[key];
    for (const auto& [slot, node] : slots) count_[find(node)]++;
    // Slots to fill: the dropped ones again (a moved replica keeps its number), then the
    // lowest numbers free.
    std::set<int> used;
    for (const auto& [slot, _] : slots) used.insert(slot);
    std::vector<int> numbers = dropped;
    int next = 1;
    auto number = [&](size_t k) {
      while (numbers.size() <= k) {
        while (used.count(next) || std::binary_search(dropped.begin(), dropped.end(), next)) next++;
        numbers.push_back(next++);
      }
      return numbers[k];
    };
    int missing = 0;
    if (s.global) {
      size_t k = 0;
      for (int n : layout(s).nodes) {
        if (count_[n] > 0) continue;
        if (!can_take(s, n)) {
          missing++;
          continue;
        }
        take(s, n);
        slots.emplace(number(k++), nodes_[n]->name);
      }
    } else {
      missing = std::max(s.replicas, 0) - static_cast<int>(slots.size());
      if (missing > 0) {
        SpreadTree tree(*this, s, slots);
        for (size_t k = 0; missing > 0; ++k, --missing) {
          int n = tree.place_one();
          if (n < 0) break;
          slots.emplace(number(k), nodes_[n]->name);
        }
      }
    }
    if (missing > 0)  // a global slot waits on its own node: only room can be missing there
      out_.unplaced.push_back({key, missing,
                               s.global ? "no suitable node (insufficient resources on " +
                                              plural(static_cast<size_t>(missing), ")")
                                        : explain(s)});
    for (const auto& [slot, node] : slots) count_[find(node)] = 0;
    if (slots.empty()) out_.assignments.erase(key);
  }

  // Swarm's pipeline, in its order (ready, resources, constraints, max replicas): each node
  // counts once, at the first filter it fails; the reasons are given most frequent first.
  std::string explain(const ServicePlacement& s) const {
    size_t ready = 0, resources = 0, constraints = 0, max = 0;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      int n = static_cast<int>(i);
      if (!nodes_[i]->ready)
        ready++;
      else if (reserves(s.reservations) && !fits(s.reservations, free_[i]))
        resources++;
      else if (!satisfies(s.constraints, *nodes_[i]))
        constraints++;
      else if (s.max_replicas_per_node > 0 && count_[n] >= s.max_replicas_per_node)
        max++;
    }
    std::vector<std::pair<size_t, std::string>> reasons;
    if (ready) reasons.emplace_back(ready, plural(ready, " not available for new tasks"));
    if (resources)
      reasons.emplace_back(resources, "insufficient resources on " + plural(resources, ""));
    if (constraints)
      reasons.emplace_back(constraints,
                           "scheduling constraints not satisfied on " + plural(constraints, ""));
    if (max) reasons.emplace_back(max, "max replicas per node limit exceed");
    std::stable_sort(reasons.begin(), reasons.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string text;
    for (const auto& [_, r] : reasons) text += (text.empty() ? "" : "; ") + r;
    return text.empty() ? "no suitable node" : "no suitable node (" + text + ")";
  }

  // The eligible nodes of a set of constraints grouped by a list of spread labels: one level
  // per label, a branch per value ("" for nodes without the label, as in Swarm), the nodes at
  // the leaves. Made once per distinct (constraints, spread) and shared by the services that
  // have them: the per-service work is then proportional to the nodes, with no string work.
  struct Layout {
    struct Branch {
      int parent = -1;
      std::map<std::string, int> children;  // by value: ties go to the first value
      std::vector<int> nodes;               // a leaf's nodes, by name
    };
    std::vector<int> nodes;  // every eligible node, by name
    std::vector<Branch> branches{1};

    int leaf_of(const Node& node, const std::vector<std::string>& spread) const {
      int b = 0;
      for (const std::string& label : spread) {
        auto it = node.labels.find(label);
        auto child = branches[b].children.find(it == node.labels.end() ? "" : it->second);
        if (child == branches[b].children.end()) return -1;
        b = child->second;
      }
      return b;
    }
  };

  const Layout& layout(const ServicePlacement& s) {
    std::string sig;
    for (const Constraint& c : s.constraints)
      sig += c.key + (c.op == Constraint::Op::eq ? "==" : "!=") + c.value + '\n';
    for (const std::string& label : s.spread) sig += label + '\t';
    auto [it, fresh] = layouts_.try_emplace(sig);
    Layout& l = it->second;
    if (!fresh) return l;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]->ready || !satisfies(s.constraints, *nodes_[i])) continue;
      l.nodes.push_back(static_cast<int>(i));
      int b = 0;
      for (const std::string& label : s.spread) {
        auto found = nodes_[i]->labels.find(label);
        std::string value = found == nodes_[i]->labels.end() ? "" : found->second;
        auto [child, added] =
            l.branches[b].children.emplace(value, static_cast<int>(l.branches.size()));
        if (added) {
          l.branches.emplace_back();
          l.branches.back().parent = b;
        }
        b = child->second;
      }
      l.branches[b].nodes.push_back(static_cast<int>(i));
    }
    return l;
  }

  // One service's placement walk over its layout: at each level the branch holding fewest of
  // its slots, at the leaf the node first by (its slots, slots in all, name), from a min-heap
  // built when the leaf is first reached.
  class SpreadTree {
   public:
    SpreadTree(Scheduler& sched, const ServicePlacement& s, const SlotMap& kept)
        : sched_(sched), s_(s), layout_(sched.layout(s)), state_(layout_.branches.size()) {
      for (const auto& [slot, node] : kept) {
        int leaf = layout_.leaf_of(*sched.nodes_[sched.find(node)], s.spread);
        for (int up = leaf; up >= 0; up = layout_.branches[up].parent) state_[up].tasks++;
      }
    }

    // The node given the next slot, or -1 when no eligible node has room.
    int place_one() {
      for (;;) {
        int b = 0;
        while (!state_[b].full && !layout_.branches[b].children.empty()) {
          int best = -1;
          for (const auto& [_, c] : layout_.branches[b].children)
            if (!state_[c].full && (best < 0 || state_[c].tasks < state_[best].tasks)) best = c;
          if (best < 0) {
            state_[b].full = true;
            break;
          }
          b = best;
        }
        if (state_[0].full) return -1;
        if (state_[b].full) continue;
        auto& heap = state_[b].heap;
        if (!state_[b].built) {
          state_[b].built = true;
          for (int n : layout_.branches[b].nodes) heap.push_back(key(n));
          std::make_heap(heap.begin(), heap.end(), std::greater<>());
        }
        while (!heap.empty() && !sched_.can_take(s_, std::get<2>(heap.front()))) {
          std::pop_heap(heap.begin(), heap.end(), std::greater<>());
          heap.pop_back();
        }
        if (heap.empty()) {
          state_[b].full = true;
          continue;
        }
        int n = std::get<2>(heap.front());
        sched_.take(s_, n);
        std::pop_heap(heap.begin(), heap.end(), std::greater<>());
        heap.back() = key(n);
        std::push_heap(heap.begin(), heap.end(), std::greater<>());
        for (int up = b; up >= 0; up = layout_.branches[up].parent) state_[up].tasks++;
        return n;
      }
    }

   private:
    using Key = std::tuple<int, int, int>;  // slots of the service, slots in all, node index
    Key key(int n) const { return {sched_.count_[n], sched_.tasks_[n], n}; }
    struct State {
      int tasks = 0;
      bool full = false;
      bool built = false;
      std::vector<Key> heap;
    };
    Scheduler& sched_;
    const ServicePlacement& s_;
    const Layout& layout_;
    std::vector<State> state_;
  };

  void count_changes() {
    auto each = [](const Assignments& a, const Assignments& b, auto&& fn) {
      for (const auto& [key, slots] : a) {
        auto other = b.find(key);
        for (const auto& [slot, node] : slots) {
          const std::string* there = nullptr;
          if (other != b.end())
            if (auto it = other->second.find(slot); it != other->second.end()) there = &it->second;
          fn(node, there);
        }
      }
    };
    each(in_.current, out_.assignments, [&](const std::string& node, const std::string* now) {
      if (now == nullptr)
        out_.removed++;
      else if (*now == node)
        out_.kept++;
      else
        out_.moved++;
    });
    each(out_.assignments, in_.current, [&](const std::string&, const std::string* before) {
      if (before == nullptr) out_.placed++;
    });
  }

  const SchedulerInput& in_;
  std::vector<const Node*> nodes_;  // by name
  std::unordered_map<std::string, int> index_;
  std::vector<Resources> free_;
  std::vector<int> tasks_;   // slots on each node, every service
  std::vector<int> count_;   // slots on each node of the service in hand (zero between)
  std::vector<int> before_;  // slots on each node in the current assignments
  std::map<std::string, const ServicePlacement*> services_;
  std::map<std::string, Layout> layouts_;  // by constraints and spread
  Schedule out_;
};

}  // namespace

std::string service_key(const std::string& project, const std::string& service) {
  return project + "/" + service;
}

bool satisfies(const std::vector<Constraint>& constraints, const Node& node) {
  for (const Constraint& c : constraints) {
    bool known = false;
    std::string_view value = attribute(c.key, node, known);
    if (!known) return false;  // a key no node has matches no node (Swarm)
    if (iequals(value, c.value) != (c.op == Constraint::Op::eq)) return false;
  }
  return true;
}

Schedule schedule(const SchedulerInput& input) { return Scheduler(input).run(); }

std::vector<AssignmentChange> changes(const Assignments& before, const Assignments& after) {
  std::vector<AssignmentChange> out;
  static const SlotMap kNone;
  std::set<std::string> keys;
  for (const auto& [k, _] : before) keys.insert(k);
  for (const auto& [k, _] : after) keys.insert(k);
  for (const std::string& k : keys) {
    auto b = before.find(k);
    auto a = after.find(k);
    const SlotMap& was = b == before.end() ? kNone : b->second;
    const SlotMap& now = a == after.end() ? kNone : a->second;
    std::set<int> slots;
    for (const auto& [slot, _] : was) slots.insert(slot);
    for (const auto& [slot, _] : now) slots.insert(slot);
    for (int slot : slots) {
      auto w = was.find(slot);
      auto n = now.find(slot);
      if (n == now.end())
        out.push_back({k, slot, ""});
      else if (w == was.end() || w->second != n->second)
        out.push_back({k, slot, n->second});
    }
  }
  return out;
}

}  // namespace stack::cluster
