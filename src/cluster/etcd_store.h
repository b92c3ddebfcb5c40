// EtcdStore: the Store over etcd's v3 JSON gateway (HTTP/1.1, base64 keys and values; /v3/kv,
// /v3/lease, /v3/watch, /v3/election), TLS with client certificates, several endpoints (the
// next one on a transport failure or an unavailable member). Synchronous and thread-safe:
// call it from the cluster agent's threads, never from the daemon's event loop.
//
// A write whose answer was lost is retried on the next member, so it may apply twice: callers
// write so that doing it twice is harmless (create-if-absent checks the owner it finds).
// Watch and observe streams reconnect on their own and resume after the last event they gave.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cluster/store.h"

namespace stack::cluster {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "http://127.0.0.1:2379", "https://10.0.0.1:2379"
  std::string ca_file;                 // --cluster-ca: required for https endpoints
  std::string cert_file;               // --cluster-cert: this node's client certificate
  std::string key_file;                // --cluster-key
  std::chrono::milliseconds timeout{10000};         // one request, retries and failover included
  std::chrono::milliseconds attempt_timeout{2000};  // one try on one member
};

class EtcdStore final : public Store {
 public:
  // Checks the endpoints and loads the TLS files; connects lazily.
  [[nodiscard]] static Result<std::unique_ptr<EtcdStore>> open(const EtcdOptions& options);
  ~EtcdStore() override;

  Result<RangeResult> range(const KeyRange& r) override;
  Result<Revision> put(const std::string& key, const std::string& value,
                       LeaseId lease = 0) override;
  Result<std::int64_t> erase(const KeyRange& r) override;
  Result<TxnResult> txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& then_ops,
                        const std::vector<TxnOp>& else_ops) override;
  Result<void> compact(Revision revision) override;

  Result<Lease> grant(std::int64_t ttl_seconds) override;
  Result<std::int64_t> keepalive(LeaseId lease) override;
  Result<void> revoke(LeaseId lease) override;

  Result<std::unique_ptr<EventStream>> watch_ranges(const std::vector<KeyRange>& ranges,
                                                    Revision from = 0) override;

  Result<LeaderKey> campaign(const std::string& name, const std::string& value, LeaseId lease,
                             std::chrono::milliseconds timeout) override;
  Result<void> proclaim(const LeaderKey& leader, const std::string& value) override;
  Result<KeyValue> leader(const std::string& name) override;
  Result<void> resign(const LeaderKey& leader) override;
  Result<std::unique_ptr<EventStream>> observe(const std::string& name) override;

  struct Impl;

 private:
  explicit EtcdStore(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace stack::cluster
