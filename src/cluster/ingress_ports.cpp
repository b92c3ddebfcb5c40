// Published ports claimed in the store: one read of every claim, then one transaction
// that creates the new keys (each compared absent) and erases the project's stale ones (each
// compared to its owner); a lost race reads again and retries, so the lowest free port goes to
// one project only. A retried write whose answer was lost shows as our own claim on the re-read.
#include "cluster/ingress_ports.h"

#include <algorithm>
#include <set>
#include <utility>

namespace stack::cluster {

namespace {

constexpr int kMaxAttempts = 50;

struct Claim {
  std::string key, proto, owner;  // OWNER: the project's own part
  int port = 0;
};

// "<prefix><proto>/<port>": proto and port, or port 0 for a key of another shape.
Claim parse(const KeyValue& kv) {
  Claim c;
  c.key = kv.key;
  auto rest = kv.key.substr(ingress_ports_prefix().size());
  auto slash = rest.find('/');
  if (slash == std::string::npos) return c;
  c.proto = rest.substr(0, slash);
  try {
    c.port = std::stoi(rest.substr(slash + 1));
  } catch (const std::exception&) {
    c.port = 0;
  }
  return c;
}

std::string key_of(const std::string& proto, int port) {
  return ingress_ports_prefix() + proto + "/" + std::to_string(port);
}

}  // namespace

Result<std::map<std::string, std::string>> ingress_ports(Store& store) {
  auto listed = STACK_TRY_CTX(store.range(KeyRange::with_prefix(ingress_ports_prefix())),
                              "read the cluster's published ports");
  std::map<std::string, std::string> out;
  for (const auto& kv : listed.kvs) out[kv.key.substr(ingress_ports_prefix().size())] = kv.value;
  return out;
}

Result<std::map<std::string, int>> claim_ingress_ports(Store& store, const std::string& project,
                                                       const std::vector<PortWant>& wants) {
  const std::string ctx = "project " + project + ": publish its ports in the cluster";
  const std::string mine = project + "/";
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto listed = STACK_TRY_CTX(store.range(KeyRange::with_prefix(ingress_ports_prefix())), ctx);
    std::set<std::pair<std::string, int>> taken;
    std::map<std::string, Claim> held;  // the project's, by owner
    for (const auto& kv : listed.kvs) {
      auto c = parse(kv);
      if (c.port == 0) continue;
      taken.insert({c.proto, c.port});
      if (kv.value.rfind(mine, 0) == 0) {
        c.owner = kv.value.substr(mine.size());
        held[c.owner] = c;
      }
    }
    std::map<std::string, int> out;
    std::vector<Compare> compares;
    std::vector<TxnOp> ops;
    std::set<std::string> kept;
    // Fixed ports first: the ephemeral ones then skip them.
    std::vector<PortWant> ordered;
    for (const auto& w : wants)
      if (w.fixed) ordered.push_back(w);
    for (const auto& w : wants)
      if (!w.fixed) ordered.push_back(w);
    for (const auto& w : ordered) {
      if (w.fixed) {
        auto key = key_of(w.proto, w.fixed);
        auto it = std::find_if(listed.kvs.begin(), listed.kvs.end(),
                               [&](const KeyValue& kv) { return kv.key == key; });
        if (it != listed.kvs.end() && it->value == mine + w.owner) {
          out[w.owner] = w.fixed;
          kept.insert(w.owner);
          continue;
        }
        if (it != listed.kvs.end() ||
            std::any_of(ops.begin(), ops.end(), [&](const TxnOp& op) { return op.range.key == key; })) {
          std::string holder = it != listed.kvs.end() ? it->value : std::string();
          for (const auto& op : ops)
            if (op.range.key == key) holder = op.value;
          auto slash = holder.find('/');
          auto at = holder.find_first_of("/@", slash + 1);
          return fail(ctx + ": port " + std::to_string(w.fixed) + "/" + w.proto +
                      " is published by service " + holder.substr(slash + 1, at - slash - 1) +
                      " of project " + holder.substr(0, slash) +
                      " already: the routing mesh serves one service per port");
        }
        taken.insert({w.proto, w.fixed});
        out[w.owner] = w.fixed;
        compares.push_back(Compare::absent(key));
        ops.push_back(TxnOp::put(key, mine + w.owner));
        continue;
      }
      if (auto h = held.find(w.owner); h != held.end() && h->second.proto == w.proto) {
        out[w.owner] = h->second.port;
        kept.insert(w.owner);
        continue;
      }
      int port = kIngressPortFirst;
      while (port <= kIngressPortLast && taken.count({w.proto, port})) ++port;
      if (port > kIngressPortLast)
        return fail(ctx + ": every port of " + std::to_string(kIngressPortFirst) + "-" +
                    std::to_string(kIngressPortLast) + "/" + w.proto + " is taken");
      taken.insert({w.proto, port});
      out[w.owner] = port;
      compares.push_back(Compare::absent(key_of(w.proto, port)));
      ops.push_back(TxnOp::put(key_of(w.proto, port), mine + w.owner));
    }
    for (const auto& [owner, c] : held) {
      if (kept.count(owner)) continue;
      compares.push_back(Compare::value_is(c.key, Compare::Op::Equal, mine + owner));
      ops.push_back(TxnOp::erase(KeyRange::exact(c.key)));
    }
    if (ops.empty()) return out;
    auto r = STACK_TRY_CTX(store.txn(compares, ops, {}), ctx);
    if (r.succeeded) return out;
  }
  return fail(ctx + ": still contended after " + std::to_string(kMaxAttempts) + " attempts");
}

Result<void> release_ingress_ports(Store& store, const std::string& project) {
  auto r = claim_ingress_ports(store, project, {});
  if (!r) return fail(r.error());
  return {};
}

}  // namespace stack::cluster
