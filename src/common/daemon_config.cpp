// Parses /etc/stack/daemon.json into DaemonConfig. Strict: an unknown key, a wrong type or an
// out-of-range value is an error naming the file and the key, never silently a default — a
// typo in "root" must not start a daemon on another state directory.
#include "common/daemon_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <array>
#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/files.h"

namespace stack {

namespace {

using json = nlohmann::json;

constexpr std::array kKeys = {"root",         "run-root",          "stacks-dir",   "resync",
                              "log-level",    "userns-remap",      "userns-layers", "log-max-size",
                              "log-max-file", "registries-config", "cluster",      "node-name",
                              "advertise",    "cluster-ca",        "cluster-cert", "cluster-key",
                              "ingress-subnet"};

std::string known_keys() {
  std::string s;
  for (const char* k : kKeys) s += (s.empty() ? "" : ", ") + std::string(k);
  return s;
}

// "line:column" (1-based) of byte OFFSET in TEXT, as an editor shows it.
std::string position(const std::string& text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < offset; i++) {
    if (text[i] == '\n') line++, col = 1;
    else col++;
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

struct Checker {
  const std::filesystem::path& path;
  const json& doc;

  tl::unexpected<Error> bad(const std::string& key, const std::string& want,
                            const json& got) const {
    return fail(path.string() + ": \"" + key + "\": expected " + want + ", got " + got.dump());
  }
  Result<std::optional<std::string>> string(const char* key, bool absolute_path = false,
                                            std::initializer_list<const char*> one_of = {}) const {
    auto it = doc.find(key);
    if (it == doc.end()) return std::nullopt;
    std::string want = absolute_path ? "an absolute path" : "a string";
    if (one_of.size()) {
      want = "one of";
      for (const char* v : one_of) want += std::string(" ") + v;
    }
    if (!it->is_string() || it->get_ref<const std::string&>().empty()) return bad(key, want, *it);
    const auto& v = it->get_ref<const std::string&>();
    if (absolute_path && v.front() != '/') return bad(key, want, *it);
    if (one_of.size() && std::none_of(one_of.begin(), one_of.end(),
                                      [&](const char* o) { return v == o; }))
      return bad(key, want, *it);
    return v;
  }
};

}  // namespace

std::filesystem::path daemon_config_path() {
  const char* e = std::getenv("STACK_DAEMON_CONFIG");
  return e && *e ? e : kDaemonConfigPath;
}

Result<DaemonConfig> parse_daemon_config(const std::string& text,
                                         const std::filesystem::path& path) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    // e.byte is 1-based, one past the offending character.
    std::string what = e.what();
    if (auto p = what.find("syntax error"); p != std::string::npos) what = what.substr(p);
    return fail(path.string() + ":" + position(text, e.byte ? e.byte - 1 : 0) + ": " + what);
  }
  if (!doc.is_object())
    return fail(path.string() + ": expected a JSON object of options (" + known_keys() + ")");
  for (const auto& [key, _] : doc.items())
    if (std::find_if(kKeys.begin(), kKeys.end(), [&](const char* k) { return key == k; }) ==
        kKeys.end())
      return fail(path.string() + ": unknown key \"" + key + "\" (keys: " + known_keys() + ")");

  Checker c{path, doc};
  DaemonConfig cfg;
  struct Field {
    std::optional<std::string>* out;
    Result<std::optional<std::string>> value;
  };
  for (auto& f : std::initializer_list<Field>{
           {&cfg.root, c.string("root", true)},
           {&cfg.run_root, c.string("run-root", true)},
           {&cfg.stacks_dir, c.string("stacks-dir", true)},
           {&cfg.registries_config, c.string("registries-config", true)},
           {&cfg.node_name, c.string("node-name")},
           {&cfg.advertise, c.string("advertise")},
           {&cfg.cluster_ca, c.string("cluster-ca", true)},
           {&cfg.cluster_cert, c.string("cluster-cert", true)},
           {&cfg.cluster_key, c.string("cluster-key", true)},
           {&cfg.ingress_subnet, c.string("ingress-subnet")},
           {&cfg.log_level, c.string("log-level", false, {"debug", "info", "warn", "error"})},
           {&cfg.userns_remap, c.string("userns-remap")},
           {&cfg.userns_layers, c.string("userns-layers", false, {"auto", "idmap", "copy"})}}) {
    if (!f.value) return fail(f.value.error());
    *f.out = *f.value;
  }
  if (cfg.node_name)
    if (auto ok = check_node_name(*cfg.node_name); !ok)
      return fail(path.string() + ": \"node-name\": " + ok.error().message);
  if (cfg.advertise)
    if (in_addr a{}; ::inet_pton(AF_INET, cfg.advertise->c_str(), &a) != 1)
      return c.bad("advertise", "an IPv4 address", doc["advertise"]);
  if (cfg.ingress_subnet && !check_ingress_subnet(*cfg.ingress_subnet))
    return c.bad("ingress-subnet", "an IPv4 subnet A.B.C.D/N, N from 8 to 28",
                 doc["ingress-subnet"]);
  if (auto it = doc.find("cluster"); it != doc.end()) {
    std::vector<std::string> words;
    if (it->is_string()) words.push_back(it->get<std::string>());
    if (it->is_array())
      for (const auto& u : *it) {
        if (!u.is_string()) return c.bad("cluster", "etcd URLs (a string or an array)", *it);
        words.push_back(u.get<std::string>());
      }
    if (words.empty()) return c.bad("cluster", "etcd URLs (a string or an array)", *it);
    auto urls = parse_cluster_urls(words);
    if (!urls) return fail(path.string() + ": \"cluster\": " + urls.error().message);
    cfg.cluster = *urls;
  }
  if (auto it = doc.find("resync"); it != doc.end()) {
    if (!it->is_number() || it->get<double>() < 0.01 || it->get<double>() > 86400)
      return c.bad("resync", "a number of seconds from 0.01 to 86400", *it);
    cfg.resync = it->get<double>();
  }
  if (auto it = doc.find("log-max-size"); it != doc.end()) {
    std::optional<int64_t> size;
    if (it->is_number_integer()) size = it->get<int64_t>() > 0 ? it->get<int64_t>() : 0;
    if (it->is_string()) size = parse_log_size(it->get<std::string>());
    if (!size || *size <= 0) return c.bad("log-max-size", "a size such as \"10m\" or bytes", *it);
    cfg.log_max_size = *size;
  }
  if (auto it = doc.find("log-max-file"); it != doc.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1000)
      return c.bad("log-max-file", "a number of files from 1 to 1000", *it);
    cfg.log_max_file = static_cast<int>(it->get<int64_t>());
  }
  return cfg;
}

std::optional<int64_t> parse_log_size(const std::string& text) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return std::nullopt;
  size_t end = 0;
  int64_t n = 0;
  for (; end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])); end++) {
    if (n > (int64_t{1} << 50)) return std::nullopt;
    n = n * 10 + (text[end] - '0');
  }
  std::string unit = text.substr(end);
  for (auto& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  int shift = unit.empty() || unit == "b" ? 0
              : unit == "k" || unit == "kb" ? 10
              : unit == "m" || unit == "mb" ? 20
              : unit == "g" || unit == "gb" ? 30
                                            : -1;
  if (shift < 0 || n <= 0) return std::nullopt;
  return n << shift;
}

Result<std::vector<std::string>> parse_cluster_urls(const std::vector<std::string>& words) {
  std::vector<std::string> out;
  for (const auto& word : words) {
    size_t start = 0;
    while (start <= word.size()) {
      size_t comma = std::min(word.find(',', start), word.size());
      std::string url = word.substr(start, comma - start);
      start = comma + 1;
      bool http = url.rfind("http://", 0) == 0, https = url.rfind("https://", 0) == 0;
      std::string host = url.substr(http ? 7 : https ? 8 : 0);
      if (!host.empty() && host.back() == '/') host.pop_back();
      if ((!http && !https) || host.empty() || host.find_first_of("/?#@ ") != std::string::npos)
        return fail("not an etcd client URL such as http://10.0.0.5:2379: \"" + url + "\"");
      out.push_back((http ? "http://" : "https://") + host);
    }
  }
  if (out.empty()) return fail("no etcd URL given");
  return out;
}

Result<void> check_node_name(const std::string& name) {
  auto ok = [](unsigned char ch) { return std::isalnum(ch) || ch == '.' || ch == '_' || ch == '-'; };
  if (name.empty() || name.size() > 63 || !std::isalnum(static_cast<unsigned char>(name[0])) ||
      !std::all_of(name.begin(), name.end(), ok))
    return fail("not a node name (1 to 63 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit): \"" + name + "\"");
  return {};
}

Result<void> check_ingress_subnet(const std::string& text) {
  auto slash = text.find('/');
  in_addr a{};
  int prefix = 0;
  bool ok = slash != std::string::npos && ::inet_pton(AF_INET, text.substr(0, slash).c_str(), &a) == 1;
  if (ok) {
    auto digits = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    ok = ec == std::errc() && p == digits.data() + digits.size() && prefix >= 8 && prefix <= 28;
  }
  if (!ok) return fail("not an IPv4 subnet A.B.C.D/N with N from 8 to 28: \"" + text + "\"");
  return {};
}

Result<DaemonConfig> load_daemon_config(const std::filesystem::path& path) {
  auto text = read_file(path, 1 << 20, "the daemon's configuration");
  if (!text) {
    if (text.error().sys_errno == ENOENT) return DaemonConfig{};
    return fail(text.error());
  }
  return parse_daemon_config(*text, path);
}

}  // namespace stack
