// The yaml-cpp adapter: converts a yaml-cpp document into spec::Node with 1-based positions,
// applies merge keys and rejects duplicate keys. yaml-cpp exceptions stop here.
#include "spec/node.h"

#include <yaml-cpp/yaml.h>

namespace stack::spec {
namespace {

SourcePos pos_of(const YAML::Mark& mark, const std::string& file) {
  if (mark.line < 0) return SourcePos{file, 0, 0};
  return SourcePos{file, mark.line + 1, mark.column + 1};
}

class Converter {
 public:
  explicit Converter(const std::string& file) : file_(file) {}

  Node convert(const YAML::Node& in) {
    Node out;
    out.pos = pos_of(in.Mark(), file_);
    switch (in.Type()) {
      case YAML::NodeType::Scalar:
        out.kind = Node::Kind::scalar;
        out.value = in.Scalar();
        out.quoted = in.Tag() == "!";
        break;
      case YAML::NodeType::Sequence:
        out.kind = Node::Kind::sequence;
        for (const auto& item : in) out.items.push_back(convert(item));
        break;
      case YAML::NodeType::Map:
        out.kind = Node::Kind::mapping;
        convert_mapping(in, out);
        break;
      default:
        out.kind = Node::Kind::null_value;
    }
    return out;
  }

  std::vector<std::string> errors;

 private:
  void convert_mapping(const YAML::Node& in, Node& out) {
    std::vector<Node> merge_sources;
    for (const auto& kv : in) {
      SourcePos key_pos = pos_of(kv.first.Mark(), file_);
      if (!kv.first.IsScalar()) {
        errors.push_back(key_pos.str() + ": mapping keys must be strings");
        continue;
      }
      const std::string& key = kv.first.Scalar();
      if (key == "<<" && kv.first.Tag() != "!") {
        merge_sources.push_back(convert(kv.second));
        continue;
      }
      if (out.find(key) != nullptr) {
        errors.push_back(key_pos.str() + ": duplicate key \"" + key + "\"");
        continue;
      }
      out.entries.push_back(Entry{key, key_pos, convert(kv.second)});
    }
    // Explicit keys win over merged ones; earlier merge sources win over later ones.
    for (const Node& source : merge_sources) {
      if (source.is_mapping()) {
        add_missing(out, source);
      } else if (source.is_sequence()) {
        for (const Node& item : source.items) {
          if (item.is_mapping())
            add_missing(out, item);
          else
            errors.push_back(item.pos.str() + ": merge key \"<<\" expects mappings");
        }
      } else {
        errors.push_back(source.pos.str() + ": merge key \"<<\" expects a mapping");
      }
    }
  }

  static void add_missing(Node& out, const Node& source) {
    for (const Entry& e : source.entries)
      if (out.find(e.key) == nullptr) out.entries.push_back(e);
  }

  const std::string& file_;
};

}  // namespace

const Node* Node::find(std::string_view key) const {
  for (const Entry& e : entries)
    if (e.key == key) return &e.value;
  return nullptr;
}

Node* Node::find(std::string_view key) {
  for (Entry& e : entries)
    if (e.key == key) return &e.value;
  return nullptr;
}

std::string Node::describe() const {
  switch (kind) {
    case Kind::scalar:
      return "\"" + value + "\"";
    case Kind::sequence:
      return "a list";
    case Kind::mapping:
      return "a mapping";
    default:
      return "null";
  }
}

Result<Node> parse_yaml(const std::string& text, const std::string& display_name) {
  YAML::Node doc;
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(text);
    if (docs.size() > 1)
      return fail(pos_of(docs[1].Mark(), display_name).str() +
                  ": a stack file holds one YAML document; remove the second one (or its ---)");
    if (!docs.empty()) doc = docs.front();
  } catch (const YAML::Exception& e) {
    SourcePos pos = pos_of(e.mark, display_name);
    return fail(pos.str() + ": " + e.msg);
  }
  Converter converter(display_name);
  Node root;
  try {
    root = converter.convert(doc);
  } catch (const YAML::Exception& e) {
    return fail(pos_of(e.mark, display_name).str() + ": " + e.msg);
  }
  if (!converter.errors.empty()) {
    std::string joined;
    for (const auto& line : converter.errors) joined += (joined.empty() ? "" : "\n") + line;
    return fail(joined);
  }
  if (root.is_null()) root.pos = SourcePos{display_name, 1, 1};
  return root;
}

}  // namespace stack::spec
