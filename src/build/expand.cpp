// Docker's word expansion for Dockerfiles: quotes, escapes and variables as BuildKit's shell
// lexer (frontend/dockerfile/shell/lex.go) processes them. Pure.
#include <algorithm>
#include <cctype>

#include "build/dockerfile.h"

namespace stack::build {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Docker's shell lexer (moby/buildkit frontend/dockerfile/shell/lex.go), reduced to what
// Dockerfiles use: quotes, escapes, $VAR and ${VAR} with :- - :+ + :? ? modifiers.
class Lexer {
 public:
  Lexer(std::string_view text, const Vars& vars, char escape, bool vars_only)
      : s_(text), vars_(vars), escape_(escape), vars_only_(vars_only) {}

  // Words (SPLIT) or one word. Stops at an unquoted STOP char (for ${x:-word}), not consumed.
  Result<std::vector<std::string>> run(bool split, char stop = 0) {
    std::vector<std::string> words;
    std::string cur;
    bool have = false;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (stop && c == stop) break;
      if (split && (c == ' ' || c == '\t' || c == '\n')) {
        if (have) words.push_back(std::move(cur));
        cur.clear();
        have = false;
        ++i_;
        continue;
      }
      have = true;
      if (!vars_only_ && c == '\'') {
        ++i_;
        size_t end = s_.find('\'', i_);
        if (end == std::string_view::npos) return fail("unterminated single quote");
        cur += s_.substr(i_, end - i_);
        i_ = end + 1;
      } else if (!vars_only_ && c == '"') {
        ++i_;
        bool closed = false;
        while (i_ < s_.size()) {
          char d = s_[i_];
          if (d == '"') {
            closed = true;
            ++i_;
            break;
          }
          if (d == escape_ && i_ + 1 < s_.size()) {
            char n = s_[i_ + 1];
            if (n == '"' || n == '$' || n == escape_) {
              cur += n;
              i_ += 2;
              continue;
            }
            cur += d;
            ++i_;
            continue;
          }
          if (d == '$') {
            auto v = variable();
            if (!v) return fail(v.error());
            cur += *v;
            continue;
          }
          cur += d;
          ++i_;
        }
        if (!closed) return fail("unterminated double quote");
      } else if (c == escape_) {
        ++i_;
        if (i_ >= s_.size()) {
          cur += c;
          break;
        }
        if (vars_only_ && s_[i_] != '$') cur += c;
        cur += s_[i_++];
      } else if (c == '$') {
        auto v = variable();
        if (!v) return fail(v.error());
        if (split) {
          // An unquoted expansion splits into words, as a shell does.
          for (char x : *v) {
            if (x == ' ' || x == '\t' || x == '\n') {
              if (!cur.empty()) words.push_back(std::move(cur));
              cur.clear();
            } else {
              cur += x;
            }
          }
          have = !cur.empty();
        } else {
          cur += *v;
        }
      } else {
        cur += c;
        ++i_;
      }
    }
    if (have || !split) words.push_back(std::move(cur));
    return words;
  }

 private:
  // At '$': the value it expands to.
  Result<std::string> variable() {
    ++i_;  // '$'
    if (i_ >= s_.size()) return std::string("$");
    if (s_[i_] != '{') {
      size_t start = i_;
      while (i_ < s_.size() && name_char(s_[i_])) ++i_;
      if (start == i_) return std::string("$");
      return lookup(s_.substr(start, i_ - start)).value_or("");
    }
    ++i_;  // '{'
    size_t start = i_;
    while (i_ < s_.size() && name_char(s_[i_])) ++i_;
    std::string name(s_.substr(start, i_ - start));
    if (name.empty()) return fail("bad substitution: ${ without a variable name");
    if (i_ >= s_.size()) return fail("bad substitution: missing } after ${" + name);
    if (s_[i_] == '}') {
      ++i_;
      return lookup(name).value_or("");
    }
    bool colon = false;
    if (s_[i_] == ':') {
      colon = true;
      ++i_;
    }
    if (i_ >= s_.size()) return fail("bad substitution: missing } after ${" + name);
    char op = s_[i_];
    if (op != '-' && op != '+' && op != '?')
      return fail("unsupported modifier '" + std::string(1, op) + "' in ${" + name + "}");
    ++i_;
    // The word is processed in turn (it may hold variables and quotes), up to the '}'.
    Lexer inner(s_.substr(i_), vars_, escape_, vars_only_);
    auto word = inner.run(false, '}');
    if (!word) return fail(word.error());
    i_ += inner.i_;
    if (i_ >= s_.size() || s_[i_] != '}')
      return fail("bad substitution: missing } after ${" + name);
    ++i_;
    std::string w = word->empty() ? "" : word->front();
    auto v = lookup(name);
    bool set = v.has_value() && (!colon || !v->empty());
    switch (op) {
      case '-': return set ? *v : w;
      case '+': return set ? w : std::string();
      default:
        if (!set) return fail(name + ": " + (w.empty() ? "is not set" : w));
        return *v;
    }
  }

  std::optional<std::string> lookup(std::string_view name) const {
    auto it = vars_.find(std::string(name));
    if (it == vars_.end()) return std::nullopt;
    return it->second;
  }

  std::string_view s_;
  const Vars& vars_;
  char escape_;
  bool vars_only_;
  size_t i_ = 0;
};

}  // namespace

Result<std::vector<std::string>> raw_words(std::string_view s, char escape) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      cur += c;
      if (c == escape && quote == '"' && i + 1 < s.size()) {
        cur += s[++i];
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == ' ' || c == '\t') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    cur += c;
    if (c == '"' || c == '\'') quote = c;
    else if (c == escape && i + 1 < s.size()) cur += s[++i];
  }
  if (quote) return fail(std::string("unterminated ") + (quote == '"' ? "double" : "single") + " quote");
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

Result<std::string> expand_word(std::string_view text, const Vars& vars, char escape) {
  Lexer lex(text, vars, escape, false);
  auto words = lex.run(false);
  if (!words) return fail(words.error());
  return words->empty() ? std::string() : words->front();
}

Result<std::vector<std::string>> expand_words(std::string_view text, const Vars& vars,
                                              char escape) {
  Lexer lex(text, vars, escape, false);
  return lex.run(true);
}

Result<std::string> expand_vars_only(std::string_view text, const Vars& vars, char escape) {
  Lexer lex(text, vars, escape, true);
  auto words = lex.run(false);
  if (!words) return fail(words.error());
  return words->empty() ? std::string() : words->front();
}

Result<std::vector<std::pair<std::string, std::string>>> key_values(std::string_view text,
                                                                    const Vars& vars, char escape,
                                                                    bool allow_legacy) {
  std::vector<std::pair<std::string, std::string>> out;
  auto words = raw_words(text, escape);
  if (!words) return fail(words.error());
  if (words->empty()) return fail("needs KEY=VALUE");
  if (words->front().find('=') == std::string::npos) {
    // The legacy form "KEY VALUE...": one pair, the value the rest of the line.
    if (!allow_legacy) return fail("\"" + words->front() + "\" is not KEY=VALUE");
    std::string_view t = trim(text);
    size_t sp = t.find_first_of(" \t");
    if (sp == std::string_view::npos) return fail(std::string(t) + " has no value");
    auto key = expand_word(t.substr(0, sp), vars, escape);
    auto value = expand_word(trim(t.substr(sp)), vars, escape);
    if (!key) return fail(key.error());
    if (!value) return fail(value.error());
    out.emplace_back(*key, *value);
    return out;
  }
  for (const auto& w : *words) {
    size_t eq = w.find('=');
    if (eq == std::string::npos) return fail("\"" + w + "\" is not KEY=VALUE");
    auto key = expand_word(std::string_view(w).substr(0, eq), vars, escape);
    auto value = expand_word(std::string_view(w).substr(eq + 1), vars, escape);
    if (!key) return fail(key.error());
    if (!value) return fail(value.error());
    if (key->empty()) return fail("\"" + w + "\" has an empty key");
    out.emplace_back(*key, *value);
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::optional<std::string>>>> arg_decls(
    std::string_view text, const Vars& vars, char escape) {
  auto words = raw_words(text, escape);
  if (!words) return fail(words.error());
  if (words->empty()) return fail("needs a name");
  std::vector<std::pair<std::string, std::optional<std::string>>> out;
  for (const auto& w : *words) {
    size_t eq = w.find('=');
    std::string name = w.substr(0, eq);
    if (name.empty() || !std::all_of(name.begin(), name.end(), name_char))
      return fail("\"" + name + "\" is not a valid name");
    if (eq == std::string::npos) {
      out.emplace_back(name, std::nullopt);
      continue;
    }
    auto v = expand_word(std::string_view(w).substr(eq + 1), vars, escape);
    if (!v) return fail(v.error());
    out.emplace_back(name, *v);
  }
  return out;
}

}  // namespace stack::build
