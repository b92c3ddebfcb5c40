// The node record and labels as JSON. Decoding is strict about types (a record another
// version wrote with a wrong type is an error naming the key), lenient about extra fields
// (a newer daemon may add some).
#include "cluster/node_record.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace stack::cluster {

namespace {
using nlohmann::json;

Result<json> parse_object(std::string_view text, std::string_view what) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail(std::string(what) + ": not a JSON object");
  return doc;
}

Result<Labels> labels_of(const json& doc, std::string_view what) {
  Labels out;
  for (const auto& [k, v] : doc.items()) {
    if (!v.is_string()) return fail(std::string(what) + ": label \"" + k + "\" is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

bool valid_label_key(const std::string& k) {
  return !k.empty() && k.size() <= 128 && std::all_of(k.begin(), k.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '.' || ch == '_' || ch == '-' || ch == '/';
  });
}
}  // namespace

std::string encode_node(const NodeRecord& n) {
  return json{{"name", n.name},
              {"address", n.address},
              {"labels", n.labels},
              {"cpus", n.cpus},
              {"memory_bytes", n.memory_bytes},
              {"engine_version", n.engine_version},
              {"started_at", n.started_at},
              {"daemon_id", n.daemon_id}}
      .dump();
}

Result<NodeRecord> decode_node(std::string_view text, std::string_view what) {
  auto doc = parse_object(text, what);
  if (!doc) return fail(doc.error());
  NodeRecord n;
  try {
    n.name = doc->at("name").get<std::string>();
    n.address = doc->value("address", std::string());
    n.cpus = doc->value("cpus", 0);
    n.memory_bytes = doc->value("memory_bytes", std::int64_t{0});
    n.engine_version = doc->value("engine_version", std::string());
    n.started_at = doc->value("started_at", std::string());
    n.daemon_id = doc->value("daemon_id", std::string());
    if (doc->contains("labels")) {
      auto labels = labels_of((*doc)["labels"], what);
      if (!labels) return fail(labels.error());
      n.labels = *labels;
    }
  } catch (const json::exception& e) {
    return fail(std::string(what) + ": " + e.what());
  }
  return n;
}

std::string encode_labels(const Labels& labels) { return json(labels).dump(); }

Result<Labels> decode_labels(std::string_view text, std::string_view what) {
  auto doc = parse_object(text, what);
  if (!doc) return fail(doc.error());
  return labels_of(*doc, what);
}

Result<Labels> edit_labels(Labels labels, const Labels& add,
                           const std::vector<std::string>& remove) {
  for (const auto& k : remove) {
    if (!valid_label_key(k)) return fail("not a label key: \"" + k + "\"");
    labels.erase(k);
  }
  for (const auto& [k, v] : add) {
    if (!valid_label_key(k))
      return fail("not a label key (1 to 128 letters, digits, '.', '_', '-' or '/'): \"" + k +
                  "\"");
    if (v.size() > 256 || std::any_of(v.begin(), v.end(), [](unsigned char ch) {
          return std::iscntrl(ch);
        }))
      return fail("label " + k + ": the value must be at most 256 bytes without control characters");
    labels[k] = v;
  }
  return labels;
}

}  // namespace stack::cluster
