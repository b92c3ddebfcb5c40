// The instructions that change only the image's config (ARG, ENV, LABEL, MAINTAINER, EXPOSE,
// VOLUME, USER, STOPSIGNAL, SHELL, CMD, ENTRYPOINT, HEALTHCHECK), applied in memory with
// Docker's rules. Pure: no I/O.
#include <algorithm>
#include <cctype>
#include <set>

#include "build/builder.h"

namespace stack::build {

namespace {

void set_env(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  for (auto& e : env)
    if (e.compare(0, key.size() + 1, key + "=") == 0) {
      e = key + "=" + value;
      return;
    }
  env.push_back(key + "=" + value);
}

}  // namespace

Result<int64_t> parse_duration(std::string_view s) {
  if (s.empty()) return fail("empty duration");
  if (s == "0") return int64_t{0};
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (start == i) return fail("bad duration \"" + std::string(s) + "\"");
    double v = std::stod(std::string(s.substr(start, i - start)));
    size_t u = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    std::string unit(s.substr(u, i - u));
    double mult = unit == "ns" ? 1 : unit == "us" || unit == "µs" ? 1e3 : unit == "ms" ? 1e6
                : unit == "s" ? 1e9 : unit == "m" ? 60e9 : unit == "h" ? 3600e9 : -1;
    if (mult < 0) return fail("bad duration \"" + std::string(s) + "\": unit must be ns, us, ms, s, m or h");
    total += v * mult;
  }
  return static_cast<int64_t>(total);
}

Result<std::vector<std::string>> expose_ports(const std::string& word) {
  std::string port = word, proto = "tcp";
  if (size_t slash = word.find('/'); slash != std::string::npos) {
    port = word.substr(0, slash);
    proto = word.substr(slash + 1);
    std::transform(proto.begin(), proto.end(), proto.begin(), ::tolower);
  }
  if (proto != "tcp" && proto != "udp" && proto != "sctp")
    return fail("EXPOSE " + word + ": protocol must be tcp, udp or sctp");
  auto number = [&](const std::string& p) -> Result<int> {
    if (p.empty() || !std::all_of(p.begin(), p.end(), ::isdigit) || p.size() > 5 ||
        std::stoi(p) < 1 || std::stoi(p) > 65535)
      return fail("EXPOSE " + word + ": \"" + p + "\" is not a port (1-65535)");
    return std::stoi(p);
  };
  size_t dash = port.find('-');
  auto first = number(port.substr(0, dash));
  if (!first) return fail(first.error());
  int last = *first;
  if (dash != std::string::npos) {
    auto l = number(port.substr(dash + 1));
    if (!l) return fail(l.error());
    if (*l < *first) return fail("EXPOSE " + word + ": the range ends before it starts");
    last = *l;
  }
  std::vector<std::string> out;
  for (int p = *first; p <= last; ++p) out.push_back(std::to_string(p) + "/" + proto);
  return out;
}

Result<void> apply_config(const Instruction& ins, StageState& st, const ConfigContext& cx) {
  auto at = [&](int line) { return cx.file + ":" + std::to_string(line); };
  const std::string& k = ins.keyword;
  auto& c = st.recipe.config;
  Vars vars = st.vars();
  auto err = [&](const Error& e) { return fail(at(ins.line) + ": " + k + ": " + e.message); };
  if (k == "ARG") {
    auto decls = arg_decls(ins.text, vars, cx.escape);
    if (!decls) return err(decls.error());
    for (const auto& [name, def] : *decls) {
      if (auto it = cx.build_args.find(name); it != cx.build_args.end()) st.args[name] = it->second;
      else if (def) st.args[name] = *def;
      else if (auto g = cx.global_args.find(name); g != cx.global_args.end())
        st.args[name] = g->second;
    }
  } else if (k == "ENV") {
    auto kv = key_values(ins.text, vars, cx.escape, true);
    if (!kv) return err(kv.error());
    for (const auto& [key, value] : *kv) set_env(c.env, key, value);
  } else if (k == "LABEL") {
    auto kv = key_values(ins.text, vars, cx.escape, true);
    if (!kv) return err(kv.error());
    for (const auto& [key, value] : *kv) c.labels[key] = value;
  } else if (k == "MAINTAINER") {
    auto v = expand_word(ins.text, vars, cx.escape);
    if (!v) return err(v.error());
    c.labels["maintainer"] = *v;  // MAINTAINER is deprecated: docker suggests this label
  } else if (k == "EXPOSE") {
    auto words = expand_words(ins.text, vars, cx.escape);
    if (!words) return err(words.error());
    std::set<std::string> ports(c.exposed_ports.begin(), c.exposed_ports.end());
    for (const auto& w : *words) {
      auto p = expose_ports(w);
      if (!p) return fail(at(ins.line) + ": " + p.error().message);
      ports.insert(p->begin(), p->end());
    }
    c.exposed_ports.assign(ports.begin(), ports.end());
  } else if (k == "VOLUME") {
    std::vector<std::string> vols = ins.exec;
    if (!ins.exec_form) {
      auto words = expand_words(ins.text, vars, cx.escape);
      if (!words) return err(words.error());
      vols = *words;
    }
    std::set<std::string> all(c.volumes.begin(), c.volumes.end());
    for (const auto& v : vols) {
      if (v.empty()) return fail(at(ins.line) + ": VOLUME with an empty path");
      all.insert(v);
    }
    c.volumes.assign(all.begin(), all.end());
  } else if (k == "USER") {
    auto v = expand_word(ins.text, vars, cx.escape);
    if (!v) return err(v.error());
    c.user = *v;
  } else if (k == "STOPSIGNAL") {
    auto v = expand_word(ins.text, vars, cx.escape);
    if (!v) return err(v.error());
    c.stop_signal = *v;
  } else if (k == "SHELL") {
    if (ins.exec.empty()) return fail(at(ins.line) + ": SHELL needs at least the executable");
    st.recipe.shell = ins.exec;
  } else if (k == "CMD" || k == "ENTRYPOINT") {
    std::vector<std::string> argv = ins.exec;
    if (!ins.exec_form && !ins.text.empty()) {
      argv = st.recipe.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : st.recipe.shell;
      argv.push_back(ins.text);
    }
    if (k == "CMD") {
      c.cmd = argv;
      st.cmd_set = true;
    } else {
      c.entrypoint = argv;
      // Docker: an ENTRYPOINT resets the CMD the base image had, not one this stage set.
      if (!st.cmd_set) c.cmd.clear();
    }
  } else if (k == "HEALTHCHECK") {
    std::string_view t = ins.text;
    fs::HealthConfig h;
    std::string upper_head;
    for (char ch : t.substr(0, 4)) upper_head += static_cast<char>(::toupper(ch));
    if (upper_head == "NONE" && t.size() == 4) {
      h.test = {"NONE"};
    } else if (upper_head.rfind("CMD", 0) == 0 && (t.size() == 3 || t[3] == ' ' || t[3] == '\t' || t[3] == '[')) {
      std::string_view rest = t.substr(3);
      while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
      if (rest.empty()) return fail(at(ins.line) + ": HEALTHCHECK CMD needs a command");
      if (auto exec = parse_exec_form(rest)) {
        h.test = {"CMD"};
        h.test.insert(h.test.end(), exec->begin(), exec->end());
      } else {
        h.test = {"CMD-SHELL", std::string(rest)};
      }
      for (const auto& f : ins.flags) {
        if (f.name == "retries") {
          if (f.value.empty() || !std::all_of(f.value.begin(), f.value.end(), ::isdigit))
            return fail(at(ins.line) + ": HEALTHCHECK --retries=" + f.value + ": not a number");
          h.retries = std::stoi(f.value);
          continue;
        }
        auto d = parse_duration(f.value);
        if (!d) return fail(at(ins.line) + ": HEALTHCHECK --" + f.name + ": " + d.error().message);
        if (*d != 0 && *d < 1'000'000)
          return fail(at(ins.line) + ": HEALTHCHECK --" + f.name + " must be at least 1ms");
        if (f.name == "interval") h.interval_ns = *d;
        else if (f.name == "timeout") h.timeout_ns = *d;
        else if (f.name == "start-period") h.start_period_ns = *d;
        else h.start_interval_ns = *d;
      }
    } else {
      return fail(at(ins.line) + ": HEALTHCHECK must be NONE or CMD <command>");
    }
    c.healthcheck = h;
  } else {
    return fail(at(ins.line) + ": " + k + " is not handled");
  }
  return {};
}

Result<void> Builder::config_step(const Instruction& ins, StageState& st) {
  return apply_config(ins, st, ConfigContext{req_.args, plan_.global_args, df_.escape, df_.name});
}

}  // namespace stack::build
