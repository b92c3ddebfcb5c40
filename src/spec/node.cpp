// The libyaml adapter: turns libyaml's event stream into spec::Node with 1-based positions,
// resolves anchors and aliases, applies merge keys and rejects duplicate keys and second
// documents. libyaml (C) parses about seven times faster than yaml-cpp, which matters for
// large stack files; nothing of it leaves this file.
#include "spec/node.h"

#include <yaml.h>

#include <algorithm>
#include <map>
#include <unordered_set>
#include <memory>
#include <optional>

namespace stack::spec {
namespace {

SourcePos pos_of(const yaml_mark_t& mark, const std::string& file) {
  return SourcePos{file, static_cast<int>(mark.line) + 1, static_cast<int>(mark.column) + 1};
}

// The line and column (0-based, in characters) of byte OFFSET of TEXT.
yaml_mark_t mark_at(const std::string& text, size_t offset) {
  yaml_mark_t m{};
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++m.line;
      m.column = 0;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++m.column;  // not a UTF-8 continuation byte
    }
  }
  return m;
}

bool is_null_text(const std::string& v) {
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

// One mapping or sequence being built.
struct Frame {
  Node node;
  std::string anchor;
  std::vector<Node> merge_sources;  // values of `<<` keys
  std::optional<Entry> pending;     // a mapping key waiting for its value
  bool pending_merge = false;       // ... and that key is `<<`
  // The mapping's keys so far: duplicate checks and merges stay linear in the mapping's size
  // (a file of 400,000 keys took minutes with a scan per key).
  std::unordered_set<std::string> keys;
  size_t nodes = 1;  // in this subtree, for the alias bound
};

struct Anchor {
  Node node;
  size_t nodes = 0;
};

class Builder {
 public:
  explicit Builder(const std::string& file) : file_(file) {}

  // Adds a finished node (scalar, alias, or closed collection) of NODES nodes to its parent.
  void add(Node n, const std::string& anchor, size_t nodes = 1) {
    if (!anchor.empty()) anchors_[anchor] = Anchor{n, nodes};
    if (stack_.empty()) {
      root_ = std::move(n);
      return;
    }
    Frame& f = stack_.back();
    f.nodes += nodes;
    if (f.node.is_sequence()) {
      f.node.items.push_back(std::move(n));
    } else if (!f.pending) {
      if (!n.is_scalar() && !n.is_null()) {
        errors.push_back(n.pos.str() + ": mapping keys must be strings");
        n.kind = Node::Kind::scalar;
      }
      f.pending = Entry{n.value, n.pos, Node{}};
      f.pending_merge = n.is_scalar() && !n.quoted && n.value == "<<";
    } else {
      Entry e = std::move(*f.pending);
      f.pending.reset();
      if (f.pending_merge) {
        f.merge_sources.push_back(std::move(n));
      } else if (!f.keys.insert(e.key).second) {
        errors.push_back(e.key_pos.str() + ": duplicate key \"" + e.key + "\"");
      } else {
        e.value = std::move(n);
        f.node.entries.push_back(std::move(e));
      }
      f.pending_merge = false;
    }
  }

  // False when the document nests deeper than kMaxYamlDepth (then FAILURE says where).
  bool open(Node::Kind kind, const yaml_mark_t& mark, const char* anchor) {
    if (stack_.size() >= kMaxYamlDepth) {
      failure = pos_of(mark, file_).str() + ": nested more than " +
                std::to_string(kMaxYamlDepth) + " levels deep";
      return false;
    }
    Frame f;
    f.node.kind = kind;
    f.node.pos = pos_of(mark, file_);
    if (anchor != nullptr) f.anchor = anchor;
    stack_.push_back(std::move(f));
    ++written_;
    return true;
  }

  void close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    apply_merges(f);
    add(std::move(f.node), f.anchor, f.nodes);
  }

  void scalar(const yaml_event_t& e) {
    Node n;
    n.pos = pos_of(e.start_mark, file_);
    n.value.assign(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
    n.quoted = e.data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
               (e.data.scalar.tag != nullptr &&
                std::string(reinterpret_cast<const char*>(e.data.scalar.tag)) ==
                    "tag:yaml.org,2002:str");
    n.kind = !n.quoted && is_null_text(n.value) ? Node::Kind::null_value : Node::Kind::scalar;
    if (n.kind == Node::Kind::null_value && !stack_.empty() && stack_.back().node.is_mapping() &&
        !stack_.back().pending)
      n.kind = Node::Kind::scalar;  // an empty or "null" key is still a key
    std::string anchor =
        e.data.scalar.anchor ? reinterpret_cast<const char*>(e.data.scalar.anchor) : "";
    ++written_;
    add(std::move(n), anchor);
  }

  // False when the copies aliases make exceed the bound (then FAILURE says where).
  bool alias(const yaml_event_t& e) {
    std::string name = reinterpret_cast<const char*>(e.data.alias.anchor);
    auto it = anchors_.find(name);
    if (it == anchors_.end()) {
      errors.push_back(pos_of(e.start_mark, file_).str() + ": unknown anchor \"" + name + "\"");
      Node null_node;
      null_node.pos = pos_of(e.start_mark, file_);
      add(std::move(null_node), "");
      return true;
    }
    // Counted before the copy is made: the bomb is refused before it explodes.
    expanded_ += it->second.nodes;
    size_t allowed = std::max(kMaxAliasNodesFloor, kMaxAliasNodesRatio * written_);
    if (expanded_ > allowed) {
      failure = pos_of(e.start_mark, file_).str() + ": aliases expand to more than " +
                std::to_string(allowed) + " nodes (at most " +
                std::to_string(kMaxAliasNodesRatio) + " times the file's own, or " +
                std::to_string(kMaxAliasNodesFloor) + "): refused as a YAML alias bomb";
      return false;
    }
    add(it->second.node, "", it->second.nodes);
    return true;
  }

  Node take_root() { return std::move(root_); }
  std::vector<std::string> errors;
  std::string failure;  // set when parsing must stop (a bound was crossed)

 private:
  // Explicit keys win over merged ones; earlier merge sources win over later ones.
  void apply_merges(Frame& f) {
    auto add_missing = [&](const Node& source) {
      for (const Entry& e : source.entries)
        if (f.keys.insert(e.key).second) f.node.entries.push_back(e);
    };
    for (const Node& source : f.merge_sources) {
      if (source.is_mapping()) {
        add_missing(source);
      } else if (source.is_sequence()) {
        for (const Node& item : source.items) {
          if (item.is_mapping())
            add_missing(item);
          else
            errors.push_back(item.pos.str() + ": merge key \"<<\" expects mappings");
        }
      } else {
        errors.push_back(source.pos.str() + ": merge key \"<<\" expects a mapping");
      }
    }
  }

  const std::string& file_;
  std::vector<Frame> stack_;
  std::map<std::string, Anchor> anchors_;
  Node root_;
  size_t written_ = 0;   // nodes as written in the file
  size_t expanded_ = 0;  // nodes made by expanding aliases
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

KeyIndex::KeyIndex(Node& mapping) : mapping_(mapping) {
  position_.reserve(mapping.entries.size());
  for (size_t i = 0; i < mapping.entries.size(); ++i)
    position_.emplace(mapping.entries[i].key, i);  // a duplicate keeps its first, as find()
}

Node* KeyIndex::find(const std::string& key) {
  auto it = position_.find(key);
  return it == position_.end() ? nullptr : &mapping_.entries[it->second].value;
}

void KeyIndex::append(Entry e) {
  position_.emplace(e.key, mapping_.entries.size());
  mapping_.entries.push_back(std::move(e));
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

Result<Node> parse_yaml(const std::string& text, const std::string& display_name,
                        const StopCheck& stop) {
  yaml_parser_t parser;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());
  Builder builder(display_name);
  int documents = 0;
  std::string failure;
  size_t events = 0;
  for (bool done = false; !done;) {
    if (stop && ++events % 4096 == 0)
      if (auto why = stop()) {
        failure = display_name + ": " + *why;
        break;
      }
    yaml_event_t e;
    if (!yaml_parser_parse(&parser, &e)) {
      yaml_mark_t mark = parser.problem_mark;
      // The reader (encoding, control characters such as a raw NUL) reports a byte offset
      // instead of a mark.
      if (parser.error == YAML_READER_ERROR) mark = mark_at(text, parser.problem_offset);
      failure = pos_of(mark, display_name).str() + ": " +
                (parser.problem ? parser.problem : "invalid YAML");
      if (parser.context) failure += std::string(" ") + parser.context;
      break;
    }
    switch (e.type) {
      case YAML_DOCUMENT_START_EVENT:
        if (++documents > 1)
          failure = pos_of(e.start_mark, display_name).str() +
                    ": a stack file holds one YAML document; remove the second one (or its ---)";
        break;
      case YAML_SCALAR_EVENT:
        builder.scalar(e);
        break;
      case YAML_ALIAS_EVENT:
        if (!builder.alias(e)) failure = builder.failure;
        break;
      case YAML_SEQUENCE_START_EVENT:
        if (!builder.open(Node::Kind::sequence, e.start_mark,
                          reinterpret_cast<const char*>(e.data.sequence_start.anchor)))
          failure = builder.failure;
        break;
      case YAML_MAPPING_START_EVENT:
        if (!builder.open(Node::Kind::mapping, e.start_mark,
                          reinterpret_cast<const char*>(e.data.mapping_start.anchor)))
          failure = builder.failure;
        break;
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        builder.close();
        break;
      case YAML_STREAM_END_EVENT:
        done = true;
        break;
      default:
        break;
    }
    yaml_event_delete(&e);
    if (!failure.empty()) break;
  }
  yaml_parser_delete(&parser);
  if (!failure.empty()) return fail(failure);
  if (!builder.errors.empty()) {
    std::string joined;
    for (const auto& line : builder.errors) joined += (joined.empty() ? "" : "\n") + line;
    return fail(joined);
  }
  Node root = builder.take_root();
  if (documents == 0 || root.is_null()) root.pos = SourcePos{display_name, 1, 1};
  return root;
}

}  // namespace stack::spec
