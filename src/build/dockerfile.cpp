// Dockerfile text -> instructions, as Docker's (BuildKit's) frontend reads it: parser directives
// only before anything else, ESCAPE at a line's end joins the next line (comment and empty lines
// inside a continuation are dropped), heredocs taken raw up to their terminator. Pure.
#include "build/dockerfile.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>

namespace stack::build {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The flags each instruction takes; those refused say why.
const std::map<std::string, std::set<std::string>>& known_flags() {
  static const std::map<std::string, std::set<std::string>> flags = {
      {"FROM", {"platform"}},
      {"RUN", {"mount", "network", "security"}},
      {"COPY", {"from", "chown", "chmod", "link", "parents", "exclude"}},
      {"ADD", {"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"}},
      {"HEALTHCHECK", {"interval", "timeout", "start-period", "start-interval", "retries"}},
  };
  return flags;
}

const std::set<std::string>& known_instructions() {
  static const std::set<std::string> names = {
      "FROM",   "RUN",        "CMD",     "LABEL",      "MAINTAINER", "EXPOSE",
      "ENV",    "ADD",        "COPY",    "ENTRYPOINT", "VOLUME",     "USER",
      "WORKDIR", "ARG",       "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"};
  return names;
}

// A JSON array of strings, as Docker's exec form: double quotes, JSON escapes.
std::optional<std::vector<std::string>> parse_json_strings(std::string_view s) {
  s = trim(s);
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return std::nullopt;
  std::vector<std::string> out;
  size_t i = 1;
  auto skip_ws = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  };
  skip_ws();
  if (s[i] == ']') return i + 1 == s.size() ? std::optional(out) : std::nullopt;
  while (true) {
    skip_ws();
    if (i >= s.size() || s[i] != '"') return std::nullopt;
    ++i;
    std::string v;
    while (true) {
      if (i >= s.size()) return std::nullopt;
      char c = s[i++];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;
      if (c != '\\') {
        v += c;
        continue;
      }
      if (i >= s.size()) return std::nullopt;
      char e = s[i++];
      switch (e) {
        case '"': v += '"'; break;
        case '\\': v += '\\'; break;
        case '/': v += '/'; break;
        case 'b': v += '\b'; break;
        case 'f': v += '\f'; break;
        case 'n': v += '\n'; break;
        case 'r': v += '\r'; break;
        case 't': v += '\t'; break;
        case 'u': {
          if (i + 4 > s.size()) return std::nullopt;
          unsigned cp = 0;
          for (int k = 0; k < 4; ++k) {
            char h = s[i++];
            cp <<= 4;
            if (h >= '0' && h <= '9') cp |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f') cp |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') cp |= static_cast<unsigned>(h - 'A' + 10);
            else return std::nullopt;
          }
          // UTF-8 of the BMP code point (surrogate pairs are not joined: rare in Dockerfiles).
          if (cp < 0x80) {
            v += static_cast<char>(cp);
          } else if (cp < 0x800) {
            v += static_cast<char>(0xC0 | (cp >> 6));
            v += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            v += static_cast<char>(0xE0 | (cp >> 12));
            v += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            v += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default: return std::nullopt;
      }
    }
    out.push_back(std::move(v));
    skip_ws();
    if (i >= s.size()) return std::nullopt;
    if (s[i] == ',') {
      ++i;
      continue;
    }
    if (s[i] == ']' && i + 1 == s.size()) return out;
    return std::nullopt;
  }
}

Result<std::vector<std::string>> raw_words(std::string_view s, char escape);

struct Line {
  int number;
  std::string text;
};

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> lines;
  int n = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view l = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.push_back({++n, std::string(l)});
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  if (!lines.empty() && lines.back().text.empty()) lines.pop_back();
  return lines;
}

bool is_comment(std::string_view l) {
  l = trim(l);
  return !l.empty() && l.front() == '#';
}

// The line ends in ESCAPE (trailing blanks allowed): it continues on the next one.
bool continues(std::string& l, char escape) {
  size_t end = l.find_last_not_of(" \t");
  if (end == std::string::npos || l[end] != escape) return false;
  l.erase(end);
  return true;
}

}  // namespace

std::optional<std::vector<std::string>> parse_exec_form(std::string_view text) {
  return parse_json_strings(text);
}

const Flag* Instruction::flag(std::string_view name) const {
  for (const auto& f : flags)
    if (f.name == name) return &f;
  return nullptr;
}

std::string Instruction::source() const {
  std::string s = keyword;
  for (const auto& f : flags) s += " --" + f.name + (f.value.empty() ? "" : "=" + f.value);
  if (!text.empty()) s += " " + text;
  return s;
}

Result<Dockerfile> parse_dockerfile(std::string_view text, std::string_view name) {
  Dockerfile df;
  df.name = std::string(name);
  auto at = [&](int line, const std::string& why) {
    return fail(df.name + ":" + std::to_string(line) + ": " + why);
  };
  std::vector<Line> lines = split_lines(text);
  size_t i = 0;

  // Parser directives: "# name=value" lines at the very top; the first other line (a comment,
  // an empty line, an instruction) ends them.
  static const std::regex directive(R"(^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$)");
  std::set<std::string> seen;
  for (; i < lines.size(); ++i) {
    std::smatch m;
    if (!std::regex_match(lines[i].text, m, directive)) break;
    std::string key = lower(m[1].str());
    if (key != "syntax" && key != "escape" && key != "check") break;  // a comment
    if (!seen.insert(key).second)
      return at(lines[i].number, "parser directive " + key + " given twice");
    if (key == "escape") {
      std::string v = m[2].str();
      if (v != "\\" && v != "`")
        return at(lines[i].number, "invalid escape character '" + v + "': must be \\ or `");
      df.escape = v[0];
    } else if (key == "syntax") {
      df.notes.push_back(df.name + ":" + std::to_string(lines[i].number) + ": # syntax=" +
                         m[2].str() + " is ignored: stack builds with its own engine");
    }
  }

  static const std::regex heredoc_re(R"re(<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2)re");
  while (i < lines.size()) {
    if (trim(lines[i].text).empty() || is_comment(lines[i].text)) {
      ++i;
      continue;
    }
    Instruction ins;
    ins.line = lines[i].number;
    std::string joined = lines[i].text;
    ++i;
    while (continues(joined, df.escape)) {
      // Comment and empty lines inside a continuation are dropped (Docker warns for the empty).
      while (i < lines.size() && (is_comment(lines[i].text) || trim(lines[i].text).empty())) ++i;
      if (i >= lines.size()) break;
      joined += lines[i].text;
      ++i;
    }
    std::string_view rest = trim(joined);
    size_t sp = rest.find_first_of(" \t");
    ins.keyword = upper(rest.substr(0, sp));
    rest = sp == std::string_view::npos ? std::string_view{} : trim(rest.substr(sp));
    if (!known_instructions().count(ins.keyword))
      return at(ins.line, "unknown instruction " + std::string(trim(joined).substr(0, sp)));
    if (ins.keyword == "ONBUILD")
      return at(ins.line,
                "ONBUILD is not supported: stack does not run triggers in images built from "
                "this one; put the instructions in the Dockerfiles that need them");

    // Flags: leading "--name[=value]" words.
    while (rest.starts_with("--")) {
      size_t end = rest.find_first_of(" \t");
      std::string_view word = rest.substr(2, end == std::string_view::npos ? end : end - 2);
      size_t eq = word.find('=');
      Flag f{lower(word.substr(0, eq)), eq == std::string_view::npos ? "" : std::string(word.substr(eq + 1))};
      rest = end == std::string_view::npos ? std::string_view{} : trim(rest.substr(end));
      auto known = known_flags().find(ins.keyword);
      if (known == known_flags().end() || !known->second.count(f.name))
        return at(ins.line, "unknown flag --" + f.name + " for " + ins.keyword);
      if (ins.keyword == "RUN" && f.name == "mount")
        return at(ins.line, "RUN --mount (" + f.value +
                                ") is not supported yet: stack's builder runs RUN without build "
                                "mounts; COPY what the step needs instead");
      if (ins.keyword == "RUN" && f.name == "security")
        return at(ins.line, "RUN --security is not supported: RUN steps run unprivileged");
      if (ins.keyword == "RUN" && f.name == "network" && f.value != "default" &&
          f.value != "none" && f.value != "host")
        return at(ins.line, "RUN --network=" + f.value + ": must be default, none or host");
      if (f.name == "parents" || f.name == "exclude" || f.name == "checksum" ||
          f.name == "keep-git-dir")
        return at(ins.line, ins.keyword + " --" + f.name + " is not supported");
      ins.flags.push_back(std::move(f));
    }
    ins.text = std::string(rest);

    bool json_allowed = ins.keyword == "RUN" || ins.keyword == "CMD" ||
                        ins.keyword == "ENTRYPOINT" || ins.keyword == "SHELL" ||
                        ins.keyword == "COPY" || ins.keyword == "ADD" || ins.keyword == "VOLUME";
    if (json_allowed && !ins.text.empty() && ins.text.front() == '[') {
      // Not valid JSON: Docker takes it as the shell form.
      if (auto words = parse_json_strings(ins.text)) {
        ins.exec_form = true;
        ins.exec = std::move(*words);
      }
    }
    if (ins.keyword == "SHELL" && !ins.exec_form)
      return at(ins.line, "SHELL requires the exec form: SHELL [\"executable\", \"parameters\"]");

    // Heredocs (BuildKit's): RUN, COPY and ADD in shell form; their lines are taken raw.
    if (!ins.exec_form && (ins.keyword == "RUN" || ins.keyword == "COPY" || ins.keyword == "ADD")) {
      for (std::sregex_iterator it(ins.text.begin(), ins.text.end(), heredoc_re), end; it != end;
           ++it) {
        Heredoc h;
        bool strip_tabs = !(*it)[1].str().empty();
        h.expand = (*it)[2].str().empty();
        h.name = (*it)[3].str();
        bool closed = false;
        while (i < lines.size()) {
          std::string l = lines[i++].text;
          if (strip_tabs) l.erase(0, l.find_first_not_of('\t') == std::string::npos
                                         ? l.size()
                                         : l.find_first_not_of('\t'));
          if (l == h.name) {
            closed = true;
            break;
          }
          h.content += l + "\n";
        }
        if (!closed) return at(ins.line, "heredoc <<" + h.name + " is not terminated");
        ins.heredocs.push_back(std::move(h));
      }
    }

    auto need_args = [&](const char* what) -> Result<void> {
      if (ins.text.empty() && !ins.exec_form) return at(ins.line, ins.keyword + " needs " + what);
      return {};
    };
    if (ins.keyword == "FROM") {
      if (auto r = need_args("an image (FROM image [AS name])"); !r) return fail(r.error());
    } else if (ins.keyword == "RUN" || ins.keyword == "CMD" || ins.keyword == "ENTRYPOINT") {
      if (ins.keyword == "RUN")
        if (auto r = need_args("a command"); !r) return fail(r.error());
    } else if (ins.keyword == "COPY" || ins.keyword == "ADD") {
      size_t n = ins.exec_form ? ins.exec.size() : 2;
      if (!ins.exec_form && ins.heredocs.empty()) {
        auto words = raw_words(ins.text, df.escape);
        n = words ? words->size() : 0;
      }
      if (n < 2 && ins.heredocs.empty())
        return at(ins.line, ins.keyword + " needs at least a source and a destination");
    } else if (ins.keyword == "ENV" || ins.keyword == "LABEL" || ins.keyword == "ARG" ||
               ins.keyword == "WORKDIR" || ins.keyword == "USER" || ins.keyword == "EXPOSE" ||
               ins.keyword == "VOLUME" || ins.keyword == "STOPSIGNAL" ||
               ins.keyword == "MAINTAINER" || ins.keyword == "HEALTHCHECK") {
      if (auto r = need_args("an argument"); !r) return fail(r.error());
    }
    df.instructions.push_back(std::move(ins));
  }
  return df;
}

// --- word expansion --------------------------------------------------------------------------

namespace {

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

// Words split on unquoted blanks, quotes and escapes kept (ENV and LABEL pairs).
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

}  // namespace

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
