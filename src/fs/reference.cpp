// parse_reference: image references by the OCI distribution / docker reference grammar, with
// docker's normalisation (docker.io, library/, latest). Pure string work, no I/O.
#include "fs/reference.h"

#include <string>
#include <string_view>
#include <vector>

namespace stack::fs {

namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_word(char c) { return is_alnum(c) || c == '_'; }
bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? p : p - start));
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | "__" | "-"+
Result<void> check_path_component(std::string_view c) {
  if (c.empty()) return fail("empty path component");
  for (char ch : c)
    if (ch >= 'A' && ch <= 'Z') return fail("repository name must be lowercase");
  size_t i = 0;
  while (i < c.size()) {
    size_t run = i;
    while (run < c.size() && is_lower_alnum(c[run])) ++run;
    if (run == i) return fail("invalid repository name component \"" + std::string(c) + "\"");
    i = run;
    if (i == c.size()) break;
    size_t sep = i;
    while (sep < c.size() && !is_lower_alnum(c[sep])) ++sep;
    std::string_view s = c.substr(i, sep - i);
    bool ok =
        s == "." || s == "_" || s == "__" || s.find_first_not_of('-') == std::string_view::npos;
    if (!ok || sep == c.size())
      return fail("invalid repository name component \"" + std::string(c) + "\"");
    i = sep;
  }
  return {};
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool valid_domain_component(std::string_view c) {
  if (c.empty() || !is_alnum(c.front()) || !is_alnum(c.back())) return false;
  for (char ch : c)
    if (!is_alnum(ch) && ch != '-') return false;
  return true;
}

Result<void> check_domain(std::string_view d) {
  std::string_view host = d;
  std::string_view port;
  if (!d.empty() && d.front() == '[') {  // IPv6 literal: [::1]:5000
    size_t close = d.find(']');
    if (close == std::string_view::npos) return fail("invalid registry host");
    std::string_view inner = d.substr(1, close - 1);
    if (inner.empty()) return fail("invalid registry host");
    for (char ch : inner)
      if (!is_hex(ch) && ch != ':') return fail("invalid registry host");
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("invalid registry host");
      port = rest.substr(1);
      if (port.empty()) return fail("invalid registry port");
    }
    host = {};
  } else if (size_t colon = d.find(':'); colon != std::string_view::npos) {
    host = d.substr(0, colon);
    port = d.substr(colon + 1);
    if (port.empty()) return fail("invalid registry port");
  }
  for (char ch : port)
    if (ch < '0' || ch > '9') return fail("invalid registry port \"" + std::string(port) + "\"");
  if (!d.empty() && d.front() == '[') return {};
  for (std::string_view c : split(host, '.'))
    if (!valid_domain_component(c))
      return fail("invalid registry host \"" + std::string(host) + "\"");
  return {};
}

// tag := [\w][\w.-]{0,127}
Result<void> check_tag(std::string_view t) {
  if (t.empty() || t.size() > 128 || !is_word(t.front()))
    return fail("invalid tag \"" + std::string(t) + "\"");
  for (char ch : t)
    if (!is_word(ch) && ch != '.' && ch != '-')
      return fail("invalid tag \"" + std::string(t) + "\"");
  return {};
}

// digest := algorithm ":" encoded; sha256 must be 64 lower-case hex digits.
Result<void> check_digest(std::string_view d) {
  size_t colon = d.find(':');
  if (colon == std::string_view::npos || colon == 0) return fail("invalid digest");
  std::string_view alg = d.substr(0, colon);
  std::string_view enc = d.substr(colon + 1);
  if (!((alg.front() >= 'a' && alg.front() <= 'z') || (alg.front() >= 'A' && alg.front() <= 'Z')))
    return fail("invalid digest algorithm");
  for (char ch : alg)
    if (!is_alnum(ch) && ch != '+' && ch != '.' && ch != '_' && ch != '-')
      return fail("invalid digest algorithm");
  if (enc.size() < 32) return fail("invalid digest: too short");
  for (char ch : enc)
    if (!is_hex(ch)) return fail("invalid digest: not hex");
  if (alg == "sha256") {
    if (enc.size() != 64) return fail("invalid sha256 digest: want 64 hex digits");
    for (char ch : enc)
      if (ch >= 'A' && ch <= 'F') return fail("invalid sha256 digest: must be lower-case hex");
  }
  return {};
}

// Splits NAME into domain and path and checks both. As docker's splitDockerDomain: the first
// part names a registry when it looks like a host (a '.', a ':', "localhost", an upper-case
// letter); otherwise the registry is docker.io.
Result<void> split_name(std::string_view name, Reference& out) {
  if (name.empty()) return fail("empty repository name");
  std::vector<std::string_view> parts = split(name, '/');
  size_t first_path = 0;
  out.domain = kDockerHub;
  if (parts.size() > 1) {
    std::string_view d = parts[0];
    bool has_upper = false;
    for (char ch : d) has_upper |= (ch >= 'A' && ch <= 'Z');
    if (d.find_first_of(".:[") != std::string_view::npos || d == "localhost" || has_upper) {
      if (auto r = check_domain(d); !r) return r;
      out.domain = d == "index.docker.io" ? std::string(kDockerHub) : std::string(d);
      first_path = 1;
    }
  }
  if (first_path == parts.size()) return fail("empty repository name");
  out.path.clear();
  for (size_t i = first_path; i < parts.size(); ++i) {
    if (auto r = check_path_component(parts[i]); !r) return r;
    if (!out.path.empty()) out.path.push_back('/');
    out.path.append(parts[i]);
  }
  if (out.domain == kDockerHub && out.path.find('/') == std::string::npos)
    out.path = "library/" + out.path;
  if (out.name().size() > 255) return fail("repository name longer than 255 characters");
  return {};
}

}  // namespace

std::string Reference::str() const {
  if (!digest.empty()) return name() + "@" + digest;
  return name() + ":" + tag;
}

std::string Reference::familiar() const {
  std::string n = name();
  if (domain == kDockerHub) {
    n = path;
    if (n.starts_with("library/") && n.find('/', 8) == std::string::npos) n = n.substr(8);
  }
  if (!digest.empty()) return n + "@" + digest;
  return n + ":" + tag;
}

Result<Reference> parse_reference(std::string_view ref) {
  auto invalid = [&](const Error& e) {
    return fail("invalid image reference \"" + std::string(ref) + "\": " + e.message);
  };
  if (ref.empty()) return fail("invalid image reference \"\": empty");
  Reference out;
  std::string_view name = ref;
  if (size_t at = name.find('@'); at != std::string_view::npos) {
    std::string_view digest = name.substr(at + 1);
    name = name.substr(0, at);
    if (auto r = check_digest(digest); !r) return invalid(r.error());
    if (!digest.starts_with("sha256:")) return invalid(Error{"only sha256 digests are supported"});
    out.digest = digest;
  }
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = name.substr(colon + 1);
    name = name.substr(0, colon);
    if (auto r = check_tag(tag); !r) return invalid(r.error());
    out.tag = tag;
  }
  if (auto r = split_name(name, out); !r) return invalid(r.error());
  if (out.tag.empty() && out.digest.empty()) out.tag = "latest";
  return out;
}

Result<std::string> normalize_reference(std::string_view ref) {
  auto r = parse_reference(ref);
  if (!r) return fail(r.error());
  return r->str();
}

std::string familiar_reference(std::string_view ref) {
  auto r = parse_reference(ref);
  return r ? r->familiar() : std::string(ref);
}

}  // namespace stack::fs
