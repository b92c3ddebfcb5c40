// Node registration, listing and labels over the Store. Every change is one transaction whose
// compares pin the revisions it read, retried a few times when another writer came between.
#include "cluster/nodes.h"

#include <nlohmann/json.hpp>

namespace stack::cluster {

namespace {

constexpr int kAttempts = 8;
const std::string kNodesPrefix = "/stack/nodes/";
const std::string kLabelsPrefix = "/stack/node-labels/";

std::optional<KeyValue> first(const std::vector<KeyValue>& kvs) {
  if (kvs.empty()) return std::nullopt;
  return kvs.front();
}

// The record and labels of NAME, read in one transaction (one revision).
struct NodeKeys {
  std::optional<KeyValue> record, labels;
};
Result<NodeKeys> read_node(Store& store, const std::string& name) {
  auto r = store.txn({}, {TxnOp::get(KeyRange::exact(keys::node(name))),
                          TxnOp::get(KeyRange::exact(keys::node_labels(name)))}, {});
  if (!r) return fail(r.error());
  if (r->results.size() != 2) return fail("the store answered " + std::to_string(r->results.size()) +
                                          " results to 2 reads");
  return NodeKeys{first(r->results[0].kvs), first(r->results[1].kvs)};
}

Result<Labels> labels_in(const std::optional<KeyValue>& kv) {
  if (!kv) return Labels{};
  return decode_labels(kv->value, kv->key);
}

}  // namespace

std::string leader_node(const std::string& value) {
  auto doc = nlohmann::json::parse(value, nullptr, false);
  if (!doc.is_discarded() && doc.is_object() && doc.contains("node") && doc["node"].is_string())
    return doc["node"].get<std::string>();
  return value;
}

Result<NodeRecord> register_node(Store& store, NodeRecord record, LeaseId lease) {
  const std::string ctx = "register node " + record.name;
  const std::string key = keys::node(record.name), labels_key = keys::node_labels(record.name);
  for (int attempt = 0; attempt < kAttempts; attempt++) {
    auto got = read_node(store, record.name);
    if (!got) return fail(got.error().wrap(ctx));
    std::vector<Compare> compares = {
        Compare::mod_revision(labels_key, Compare::Op::Equal,
                              got->labels ? got->labels->mod_revision : 0)};
    if (got->record) {
      auto other = decode_node(got->record->value, key);
      if (!other || other->daemon_id != record.daemon_id) {
        std::string who = other ? " (address " + other->address + ", started " +
                                      other->started_at + ")"
                                : "";
        return fail(ctx + ": the name is held by another daemon" + who +
                    " for as long as it keeps its lease alive; give this daemon another "
                    "--node-name, or stop that one and wait for its lease to expire",
                    EEXIST);
      }
      compares.push_back(
          Compare::mod_revision(key, Compare::Op::Equal, got->record->mod_revision));
    } else {
      compares.push_back(Compare::absent(key));
    }
    auto labels = labels_in(got->labels);
    if (!labels) return fail(labels.error().wrap(ctx));
    record.labels = *labels;
    auto r = store.txn(compares, {TxnOp::put(key, encode_node(record), lease)}, {});
    if (!r) return fail(r.error().wrap(ctx));
    if (r->succeeded) return record;
  }
  return fail(ctx + ": its keys kept changing under it; try again");
}

Result<NodeList> list_nodes(Store& store) {
  auto r = store.txn({}, {TxnOp::get(KeyRange::with_prefix(kNodesPrefix)),
                          TxnOp::get(KeyRange::with_prefix(kLabelsPrefix)),
                          TxnOp::get(KeyRange::with_prefix(std::string(keys::kSchedulerElection) + "/"))},
                     {});
  if (!r) return fail(r.error().wrap("list nodes"));
  if (r->results.size() != 3) return fail("list nodes: the store answered a short transaction");
  std::map<std::string, NodeStatus> nodes;
  for (const auto& kv : r->results[0].kvs) {
    auto name = kv.key.substr(kNodesPrefix.size());
    auto& n = nodes[name];
    if (auto rec = decode_node(kv.value, kv.key)) n.record = *rec;
    n.record.name = name;
    n.ready = true;
  }
  for (const auto& kv : r->results[1].kvs) {
    auto name = kv.key.substr(kLabelsPrefix.size());
    auto& n = nodes[name];
    n.record.name = name;
    if (auto labels = decode_labels(kv.value, kv.key)) n.record.labels = *labels;
  }
  NodeList out;
  const KeyValue* leader = nullptr;
  for (const auto& kv : r->results[2].kvs)
    if (!leader || kv.create_revision < leader->create_revision) leader = &kv;
  if (leader) {
    out.election = true;
    if (auto it = nodes.find(leader_node(leader->value)); it != nodes.end())
      it->second.leader = true;
  }
  for (auto& [_, n] : nodes) out.nodes.push_back(std::move(n));
  return out;
}

Result<NodeStatus> inspect_node(Store& store, const std::string& name) {
  auto list = list_nodes(store);
  if (!list) return fail(list.error());
  for (auto& n : list->nodes)
    if (n.record.name == name) return n;
  return fail("no such node: " + name);
}

Result<NodeStatus> update_node_labels(Store& store, const std::string& name, const Labels& add,
                                      const std::vector<std::string>& remove) {
  const std::string ctx = "update node " + name;
  const std::string key = keys::node(name), labels_key = keys::node_labels(name);
  for (int attempt = 0; attempt < kAttempts; attempt++) {
    auto got = read_node(store, name);
    if (!got) return fail(got.error().wrap(ctx));
    if (!got->record && !got->labels) return fail("no such node: " + name);
    auto labels = labels_in(got->labels);
    if (!labels) return fail(labels.error().wrap(ctx));
    auto edited = edit_labels(*labels, add, remove);
    if (!edited) return fail(edited.error().wrap(ctx));
    std::vector<Compare> compares = {
        Compare::mod_revision(labels_key, Compare::Op::Equal,
                              got->labels ? got->labels->mod_revision : 0),
        Compare::mod_revision(key, Compare::Op::Equal,
                              got->record ? got->record->mod_revision : 0)};
    // No labels left: the key goes, so a node that is down and unlabelled is forgotten.
    std::vector<TxnOp> ops = {edited->empty()
                                  ? TxnOp::erase(KeyRange::exact(labels_key))
                                  : TxnOp::put(labels_key, encode_labels(*edited))};
    NodeStatus status;
    status.record.name = name;
    if (got->record) {
      auto rec = decode_node(got->record->value, key);
      if (!rec) return fail(rec.error().wrap(ctx));
      status.record = *rec;
      status.ready = true;
      status.record.labels = *edited;
      ops.push_back(TxnOp::put(key, encode_node(status.record), got->record->lease));
    }
    status.record.labels = *edited;
    auto r = store.txn(compares, ops, {});
    if (!r) return fail(r.error().wrap(ctx));
    if (r->succeeded) return status;
  }
  return fail(ctx + ": its keys kept changing under it; try again");
}

}  // namespace stack::cluster
