// The JSON of etcd's v3 gateway: int64 fields as strings (or absent when zero), keys and values
// as base64, and readers that never throw on what a member sends. Internal to src/cluster: only
// etcd_*.cpp include it (nlohmann/json stays out of every other header).
#pragma once

#include <nlohmann/json.hpp>

#include "cluster/store.h"

namespace stack::cluster::etcd_json {

using json = nlohmann::json;

std::string b64(std::string_view s);
// Readers that never throw: a missing or mistyped field is 0, "", false or null.
std::int64_t i64(const json& j, const char* field);
std::string str(const json& j, const char* field);
bool flag(const json& j, const char* field);
const json& member(const json& j, const char* field);
std::string bytes(const json& j, const char* field);
// The message of a gateway error answer ({"error": "...", "code": N}), or RAW itself.
std::string error_text(const json& j, const std::string& raw);
KeyValue kv_of(const json& j);
std::vector<KeyValue> kvs_of(const json& j);
Revision header_rev(const json& j);
// [key, range_end) of a key or a prefix (the empty prefix: every key).
void set_range(json& j, const KeyRange& r);
json compare_json(const Compare& c);
json op_json(const TxnOp& op);
std::string lease_hex(LeaseId id);
json leader_json(const LeaderKey& l);

}  // namespace stack::cluster::etcd_json
