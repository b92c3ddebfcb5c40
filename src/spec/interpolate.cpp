// Implements the Compose interpolation grammar. Defaults are expanded lazily, so
// ${A:-${B}} does not warn about B when A is set.
#include "spec/interpolate.h"

namespace stack::spec {
namespace {

bool is_name_start(char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

// Index of the '}' closing the brace opened just before START, honouring nesting and $$.
std::optional<size_t> matching_brace(std::string_view s, size_t start) {
  int depth = 1;
  for (size_t i = start; i < s.size(); ++i) {
    if (s[i] == '$' && i + 1 < s.size() && (s[i + 1] == '$' || s[i + 1] == '{')) {
      if (s[i + 1] == '{') ++depth;
      ++i;
    } else if (s[i] == '}' && --depth == 0) {
      return i;
    }
  }
  return std::nullopt;
}

class Interpolator {
 public:
  Interpolator(const VarLookup& lookup, std::vector<std::string>& unset)
      : lookup_(lookup), unset_(unset) {}

  Result<std::string> run(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '$') {
        out += s[i];
        continue;
      }
      if (i + 1 >= s.size()) return fail(invalid(s));
      char next = s[i + 1];
      if (next == '$') {
        out += '$';
        ++i;
      } else if (is_name_start(next)) {
        size_t end = i + 1;
        while (end < s.size() && is_name_char(s[end])) ++end;
        out += plain(std::string(s.substr(i + 1, end - i - 1)));
        i = end - 1;
      } else if (next == '{') {
        auto close = matching_brace(s, i + 2);
        if (!close) return fail(invalid(s));
        auto r = braced(s.substr(i + 2, *close - i - 2), s);
        if (!r) return r;
        out += *r;
        i = *close;
      } else {
        return fail(invalid(s));
      }
    }
    return out;
  }

 private:
  static std::string invalid(std::string_view s) {
    return "invalid interpolation format in \"" + std::string(s) + "\" (write $$ for a literal $)";
  }

  std::string plain(const std::string& name) {
    if (auto v = lookup_(name)) return *v;
    unset_.push_back(name);
    return "";
  }

  // BODY is what is between "${" and "}".
  Result<std::string> braced(std::string_view body, std::string_view whole) {
    size_t n = 0;
    if (body.empty() || !is_name_start(body[0])) return fail(invalid(whole));
    while (n < body.size() && is_name_char(body[n])) ++n;
    std::string name(body.substr(0, n));
    if (n == body.size()) return plain(name);
    bool colon = body[n] == ':';
    size_t op_at = colon ? n + 1 : n;
    if (op_at >= body.size()) return fail(invalid(whole));
    char op = body[op_at];
    if (op != '-' && op != '?' && op != '+') return fail(invalid(whole));
    std::string_view word = body.substr(op_at + 1);

    std::optional<std::string> value = lookup_(name);
    // With a colon, an empty value counts as unset.
    bool set = value.has_value() && (!colon || !value->empty());
    // Each level recurses, and finds its closing brace by a scan of the rest: a value nested
    // 200,000 deep took seconds and then overflowed the stack.
    if (++depth_ > kMaxNesting)
      return fail("variables nested more than " + std::to_string(kMaxNesting) + " deep");
    struct Leave {
      int& depth;
      ~Leave() { --depth; }
    } leave{depth_};
    switch (op) {
      case '-':
        if (set) return *value;
        return run(word);
      case '+':
        if (set) return run(word);
        return std::string();
      default: {  // '?'
        if (set) return *value;
        auto message = run(word);
        if (!message) return message;
        std::string text = "required variable " + name + " is missing a value";
        if (!message->empty()) text += ": " + *message;
        return fail(text);
      }
    }
  }

  static constexpr int kMaxNesting = 32;
  const VarLookup& lookup_;
  std::vector<std::string>& unset_;
  int depth_ = 0;
};

}  // namespace

Result<std::string> interpolate(std::string_view text, const VarLookup& lookup,
                                std::vector<std::string>& unset) {
  Interpolator interpolator(lookup, unset);
  return interpolator.run(text);
}

namespace {

// A dotted path for messages, built only when one is needed.
std::string path_of(const std::vector<const std::string*>& keys) {
  std::string out;
  for (const std::string* k : keys) out += (out.empty() ? "" : ".") + *k;
  return out;
}

// A NUL byte ends a C string where the value meets the kernel (execve's environment and
// arguments, paths, the hostname): what follows would be cut off or, in a NUL-separated
// message, read as something else. Refused everywhere in a stack file, as docker refuses it in
// environment values and arguments.
void refuse_nul(const std::string& text, const SourcePos& pos, const char* what,
                const std::vector<const std::string*>& keys, Diagnostics& diag) {
  size_t at = text.find('\0');
  if (at == std::string::npos) return;
  std::string where = path_of(keys);
  diag.error(pos, (where.empty() ? std::string() : where + ": ") + what +
                      " contains a NUL byte (at byte " + std::to_string(at + 1) +
                      "), which is not allowed");
}

void walk(Node& node, const VarLookup& lookup, Diagnostics& diag,
          std::vector<const std::string*>& keys) {
  switch (node.kind) {
    case Node::Kind::scalar: {
      if (node.value.find('$') != std::string::npos) {
        std::vector<std::string> unset;
        auto r = interpolate(node.value, lookup, unset);
        if (!r) {
          diag.error(node.pos, r.error().message);
          return;
        }
        node.value = std::move(*r);
        for (const auto& name : unset)
          diag.warn(node.pos, "variable \"" + name + "\" is not set, using an empty string");
      }
      refuse_nul(node.value, node.pos, "the value", keys, diag);
      return;
    }
    case Node::Kind::sequence:
      for (Node& item : node.items) walk(item, lookup, diag, keys);
      return;
    case Node::Kind::mapping:
      for (Entry& e : node.entries) {
        refuse_nul(e.key, e.key_pos, "the key", keys, diag);
        keys.push_back(&e.key);
        walk(e.value, lookup, diag, keys);
        keys.pop_back();
      }
      return;
    default:
      return;
  }
}

}  // namespace

void interpolate_tree(Node& node, const VarLookup& lookup, Diagnostics& diag) {
  std::vector<const std::string*> keys;
  walk(node, lookup, diag, keys);
}

}  // namespace stack::spec
