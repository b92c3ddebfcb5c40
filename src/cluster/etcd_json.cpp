// Encoding and decoding of etcd's gateway JSON (see etcd_json.h).
#include "cluster/etcd_json.h"

#include <charconv>
#include <sstream>

#include "cluster/etcd_http.h"

namespace stack::cluster::etcd_json {

std::string b64(std::string_view s) { return base64_encode(s); }

// Readers that never throw (the gateway omits zero values and writes int64 as strings).
std::int64_t i64(const json& j, const char* field) {
  if (!j.is_object()) return 0;
  auto it = j.find(field);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (!it->is_string()) return 0;
  const auto& text = it->get_ref<const std::string&>();
  std::int64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

std::string str(const json& j, const char* field) {
  if (!j.is_object()) return {};
  auto it = j.find(field);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

bool flag(const json& j, const char* field) {
  if (!j.is_object()) return false;
  auto it = j.find(field);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

const json& member(const json& j, const char* field) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(field);
  return it == j.end() ? kNull : *it;
}

std::string bytes(const json& j, const char* field) {
  auto r = base64_decode(str(j, field));
  return r ? *r : std::string();
}

// The message of a gateway error answer ({"error": "...", "code": N}), or the text itself.
std::string error_text(const json& j, const std::string& raw) {
  if (auto e = str(j, "error"); !e.empty()) return e;
  if (auto m = str(member(j, "error"), "message"); !m.empty()) return m;
  return raw;
}

KeyValue kv_of(const json& j) {
  KeyValue kv;
  kv.key = bytes(j, "key");
  kv.value = bytes(j, "value");
  kv.create_revision = i64(j, "create_revision");
  kv.mod_revision = i64(j, "mod_revision");
  kv.version = i64(j, "version");
  kv.lease = i64(j, "lease");
  return kv;
}

std::vector<KeyValue> kvs_of(const json& j) {
  std::vector<KeyValue> out;
  if (const json& a = member(j, "kvs"); a.is_array())
    for (const auto& k : a) out.push_back(kv_of(k));
  return out;
}

Revision header_rev(const json& j) { return i64(member(j, "header"), "revision"); }

// etcd's range: [key, range_end); a prefix ends at the prefix with its last byte (below 0xff)
// plus one; the empty prefix is every key ("\0" to "\0").
void set_range(json& j, const KeyRange& r) {
  if (!r.prefix) {
    j["key"] = b64(r.key);
    return;
  }
  if (r.key.empty()) {
    j["key"] = b64(std::string(1, '\0'));
    j["range_end"] = b64(std::string(1, '\0'));
    return;
  }
  std::string end = r.key;
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) {
    end = std::string(1, '\0');
  } else {
    end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  }
  j["key"] = b64(r.key);
  j["range_end"] = b64(end);
}

json compare_json(const Compare& c) {
  json j;
  j["key"] = b64(c.key);
  static const char* kResult[] = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};
  j["result"] = kResult[static_cast<int>(c.op)];
  switch (c.target) {
    case Compare::Target::Version:
      j["target"] = "VERSION";
      j["version"] = std::to_string(c.number);
      break;
    case Compare::Target::CreateRevision:
      j["target"] = "CREATE";
      j["create_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::ModRevision:
      j["target"] = "MOD";
      j["mod_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::Value:
      j["target"] = "VALUE";
      j["value"] = b64(c.value);
      break;
  }
  return j;
}

json op_json(const TxnOp& op) {
  json body;
  switch (op.kind) {
    case TxnOp::Kind::Put:
      body["key"] = b64(op.range.key);
      body["value"] = b64(op.value);
      if (op.lease) body["lease"] = std::to_string(op.lease);
      return json{{"request_put", body}};
    case TxnOp::Kind::Erase:
      set_range(body, op.range);
      return json{{"request_delete_range", body}};
    case TxnOp::Kind::Get:
      set_range(body, op.range);
      return json{{"request_range", body}};
  }
  return body;
}

std::string lease_hex(LeaseId id) {
  std::ostringstream s;
  s << std::hex << id;
  return s.str();
}

json leader_json(const LeaderKey& l) {
  return json{{"name", b64(l.name)},
              {"key", b64(l.key)},
              {"rev", std::to_string(l.create_revision)},
              {"lease", std::to_string(l.lease)}};
}

}  // namespace stack::cluster::etcd_json
