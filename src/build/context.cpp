// .dockerignore and COPY sources. Patterns follow moby/patternmatcher: cleaned, a leading "/"
// dropped, "*" and "?" never cross "/", "**" any number of directories, and a file is matched
// when it or one of its parent directories matches; the last matching pattern decides.
#include "build/context.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include "common/files.h"
#include "fs/sha256.h"
#include "common/unique_fd.h"

namespace stack::build {

namespace stdfs = std::filesystem;

namespace {

// Go's filepath.Clean on '/' paths, without the leading "/" ("" for the root).
std::string clean(std::string_view p) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view c = p.substr(i, j - i);
    if (c == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!c.empty() && c != ".") {
      parts.emplace_back(c);
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& c : parts) out += (out.empty() ? "" : "/") + c;
  return out;
}

bool has_glob(std::string_view s) { return s.find_first_of("*?[\\") != std::string_view::npos; }

Result<std::regex> compile(std::string_view pattern) {
  std::string re = "^";
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '*') {
      if (i + 1 < pattern.size() && pattern[i + 1] == '*') {
        ++i;
        if (i + 1 < pattern.size() && pattern[i + 1] == '/') ++i;
        re += i + 1 >= pattern.size() ? ".*" : "(.*/)?";
      } else {
        re += "[^/]*";
      }
    } else if (c == '?') {
      re += "[^/]";
    } else if (c == '\\') {
      if (i + 1 < pattern.size()) {
        re += '\\';
        re += pattern[++i];
      } else {
        re += "\\\\";
      }
    } else if (c == '[') {
      // A class passes through; Go negates with '^' (and '!' is not special there).
      size_t end = pattern.find(']', i + 1);
      if (end == std::string_view::npos) return fail("unterminated [ in pattern " + std::string(pattern));
      std::string cls(pattern.substr(i + 1, end - i - 1));
      re += "[" + cls + "]";
      i = end;
    } else if (std::string_view(".+()|{}$^]").find(c) != std::string_view::npos) {
      re += '\\';
      re += c;
    } else {
      re += c;
    }
  }
  re += "$";
  try {
    return std::regex(re, std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error& e) {
    return fail("bad pattern " + std::string(pattern) + ": " + e.what());
  }
}

}  // namespace

Result<bool> pattern_match(std::string_view pattern, std::string_view path) {
  auto re = compile(pattern);
  if (!re) return fail(re.error());
  return std::regex_match(path.begin(), path.end(), *re);
}

Result<IgnoreRules> IgnoreRules::parse(std::string_view text) {
  IgnoreRules rules;
  size_t pos = 0;
  int n = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++n;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    Pattern p;
    if (line.front() == '!') {
      p.exception = true;
      line.remove_prefix(1);
      while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    }
    p.text = clean(line);
    if (p.text.empty()) continue;  // "/" or ".": the whole context; Docker ignores it too
    auto re = compile(p.text);
    if (!re) return fail(".dockerignore:" + std::to_string(n) + ": " + re.error().message);
    p.re = std::move(*re);
    rules.has_exceptions_ |= p.exception;
    rules.patterns_.push_back(std::move(p));
  }
  return rules;
}

bool IgnoreRules::excluded(std::string_view rel) const {
  if (patterns_.empty() || rel.empty()) return false;
  std::vector<std::string_view> parents;
  for (size_t i = rel.find('/'); i != std::string_view::npos; i = rel.find('/', i + 1))
    parents.push_back(rel.substr(0, i));
  bool matched = false;
  for (const auto& p : patterns_) {
    bool m = std::regex_match(rel.begin(), rel.end(), p.re);
    for (size_t i = 0; !m && i < parents.size(); ++i)
      m = std::regex_match(parents[i].begin(), parents[i].end(), p.re);
    if (m) matched = !p.exception;
  }
  return matched;
}

Result<IgnoreRules> load_ignore(const stdfs::path& context,
                                const std::optional<stdfs::path>& dockerfile) {
  std::vector<stdfs::path> candidates;
  if (dockerfile) candidates.push_back(stdfs::path(dockerfile->string() + ".dockerignore"));
  candidates.push_back(context / ".dockerignore");
  for (const auto& c : candidates) {
    if (::access(c.c_str(), F_OK) != 0) continue;
    auto text = read_file(c, 1 << 20, ".dockerignore");
    if (!text) return fail(text.error());
    auto rules = IgnoreRules::parse(*text);
    if (!rules) return fail(rules.error().wrap(c.string()));
    return rules;
  }
  return IgnoreRules{};
}

Result<stdfs::path> SourceRoot::resolve_inside(const std::string& rel) const {
  std::vector<std::string> done;
  std::vector<std::string> todo;
  auto push_parts = [&](std::string_view p) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i <= p.size()) {
      size_t j = p.find('/', i);
      if (j == std::string_view::npos) j = p.size();
      if (j > i) parts.emplace_back(p.substr(i, j - i));
      i = j + 1;
    }
    todo.insert(todo.begin(), parts.begin(), parts.end());
  };
  push_parts(rel);
  int hops = 0;
  while (!todo.empty()) {
    std::string c = todo.front();
    todo.erase(todo.begin());
    if (c == ".") continue;
    if (c == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    stdfs::path host = root_;
    for (const auto& d : done) host /= d;
    host /= c;
    struct stat st {};
    if (::lstat(host.c_str(), &st) != 0) return fail_errno(rel);
    if (S_ISLNK(st.st_mode)) {
      if (++hops > 40) return fail(rel + ": too many levels of symbolic links");
      char buf[4096];
      ssize_t n = ::readlink(host.c_str(), buf, sizeof buf);
      if (n < 0) return fail_errno("readlink " + host.string());
      std::string target(buf, static_cast<size_t>(n));
      if (!target.empty() && target[0] == '/') done.clear();  // absolute: from the root
      push_parts(target);
      continue;
    }
    done.push_back(c);
  }
  stdfs::path out = root_;
  for (const auto& d : done) out /= d;
  return out;
}

Result<std::vector<SourceItem>> SourceRoot::resolve(const std::string& source) const {
  std::string pattern = clean(source);
  std::vector<SourceItem> items;
  auto add = [&](const std::string& rel, const std::string& name) -> Result<void> {
    auto host = resolve_inside(rel);
    if (!host) return fail(host.error());
    struct stat st {};
    if (::lstat(host->c_str(), &st) != 0) return fail_errno(rel);
    std::string resolved = host->lexically_relative(root_).string();
    if (resolved == ".") resolved.clear();
    if (rules_.excluded(resolved) && !(S_ISDIR(st.st_mode) && rules_.has_exceptions()))
      return {};
    items.push_back(SourceItem{*host, resolved, name, S_ISDIR(st.st_mode)});
    return {};
  };
  auto base = [](const std::string& rel) {
    size_t s = rel.rfind('/');
    return s == std::string::npos ? rel : rel.substr(s + 1);
  };
  if (!has_glob(pattern)) {
    if (auto r = add(pattern, base(pattern)); !r) {
      if (r.error().sys_errno == ENOENT) return fail(source + ": not found in the build context");
      return fail(r.error());
    }
    if (items.empty()) return fail(source + ": not found in the build context (excluded by .dockerignore)");
    return items;
  }
  auto re = compile(pattern);
  if (!re) return fail(re.error());
  // Walk from the longest directory prefix without glob characters, as deep as the pattern.
  std::string prefix;
  size_t depth = 1;
  {
    std::string acc;
    size_t i = 0;
    bool globbed = false;
    while (i <= pattern.size()) {
      size_t j = pattern.find('/', i);
      if (j == std::string::npos) j = pattern.size();
      std::string c = pattern.substr(i, j - i);
      if (!globbed && has_glob(c)) globbed = true;
      if (!globbed) prefix += (prefix.empty() ? "" : "/") + c;
      else if (i > 0 || true) ++depth;
      i = j + 1;
    }
    if (pattern.find("**") != std::string::npos) depth = 1u << 20;
  }
  std::function<Result<void>(const std::string&, size_t)> walk_dir =
      [&](const std::string& rel, size_t level) -> Result<void> {
    stdfs::path dir = rel.empty() ? root_ : root_ / rel;
    std::error_code ec;
    std::vector<std::string> names;
    for (stdfs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      names.push_back(it->path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      std::string child = rel.empty() ? n : rel + "/" + n;
      struct stat st {};
      if (::lstat((root_ / child).c_str(), &st) != 0) continue;
      if (std::regex_match(child, *re)) {
        if (auto r = add(child, n); !r) return r;
        continue;
      }
      if (S_ISDIR(st.st_mode) && level < depth)
        if (auto r = walk_dir(child, level + 1); !r) return r;
    }
    return {};
  };
  struct stat st {};
  if (::lstat((prefix.empty() ? root_ : root_ / prefix).c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    if (auto r = walk_dir(prefix, 1); !r) return fail(r.error());
  if (items.empty()) return fail(source + ": no source files were specified (nothing matches)");
  return items;
}

Result<std::vector<std::string>> SourceRoot::walk(const SourceItem& item) const {
  std::vector<std::string> out;
  out.push_back("");
  if (!item.is_dir) return out;
  std::function<Result<void>(const std::string&)> rec = [&](const std::string& sub) -> Result<void> {
    stdfs::path dir = sub.empty() ? item.path : item.path / sub;
    std::error_code ec;
    std::vector<std::string> names;
    for (stdfs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      names.push_back(it->path().filename().string());
    if (ec) return fail("read directory " + dir.string() + ": " + ec.message(), ec.value());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      std::string child = sub.empty() ? n : sub + "/" + n;
      std::string rel = item.rel.empty() ? child : item.rel + "/" + child;
      struct stat st {};
      if (::lstat((item.path / child).c_str(), &st) != 0) return fail_errno("stat " + rel);
      bool excluded = rules_.excluded(rel);
      if (!excluded) out.push_back(child);
      if (S_ISDIR(st.st_mode) && (!excluded || rules_.has_exceptions()))
        if (auto r = rec(child); !r) return r;
    }
    return {};
  };
  if (auto r = rec(""); !r) return fail(r.error());
  return out;
}

Result<std::string> SourceRoot::content_hash(const std::vector<SourceItem>& items) const {
  fs::Sha256 all;
  for (const auto& item : items) {
    auto entries = walk(item);
    if (!entries) return fail(entries.error());
    std::string head = std::string("item") + '\0' + item.name + '\0' + (item.is_dir ? "dir\n" : "file\n");
    all.update(head.data(), head.size());
    for (const auto& sub : *entries) {
      stdfs::path p = sub.empty() ? item.path : item.path / sub;
      struct stat st {};
      if (::lstat(p.c_str(), &st) != 0) return fail_errno("stat " + p.string());
      std::string rec = sub + '\0' + std::to_string(st.st_mode) + '\0';
      if (S_ISREG(st.st_mode)) {
        UniqueFd fd(::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) return fail_errno("open " + p.string());
        fs::Sha256 h;
        char buf[1 << 16];
        for (;;) {
          ssize_t n = ::read(fd.get(), buf, sizeof buf);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return fail_errno("read " + p.string());
          if (n == 0) break;
          h.update(buf, static_cast<size_t>(n));
        }
        rec += h.hex_digest();
      } else if (S_ISLNK(st.st_mode)) {
        char buf[4096];
        ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
        if (n > 0) rec.append(buf, static_cast<size_t>(n));
      } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        rec += std::to_string(st.st_rdev);
      }
      rec += '\n';
      all.update(rec.data(), rec.size());
    }
  }
  return all.hex_digest();
}

}  // namespace stack::build
