// The build's entry points and its loop: the Dockerfile read and planned into stages, each
// needed stage built in order from its FROM, config instructions applied in memory, the result
// committed and tagged in the store. Layer steps are in run_step.cpp and copy_step.cpp.
#include "build/build.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <set>

#include "build/builder.h"
#include "common/files.h"
#include <spdlog/spdlog.h>

#include "common/log.h"
#include "common/scope_guard.h"
#include "engine/container.h"
#include "fs/image_store.h"
#include "fs/sha256.h"

namespace stack::build {

namespace stdfs = std::filesystem;

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Loaded {
  Dockerfile df;
  StagePlan plan;
  std::optional<stdfs::path> dockerfile_path;
};

Result<Loaded> load(const BuildRequest& req) {
  Loaded out;
  struct stat st {};
  if (::stat(req.context.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail("build context " + req.context.string() + ": not a directory");
  std::string text;
  std::string name = "Dockerfile";
  if (req.dockerfile_inline) {
    text = *req.dockerfile_inline;
  } else {
    stdfs::path p = req.dockerfile.empty() ? stdfs::path("Dockerfile") : req.dockerfile;
    if (p.is_relative()) p = req.context / p;
    name = p.filename().string();
    auto t = read_file(p, 4 << 20, "a Dockerfile");
    if (!t) return fail(t.error().wrap("read the Dockerfile"));
    text = std::move(*t);
    out.dockerfile_path = p;
  }
  auto df = parse_dockerfile(text, name);
  if (!df) return fail(df.error());
  out.df = std::move(*df);
  auto plan = plan_stages(out.df, req.args, req.target);
  if (!plan) return fail(plan.error());
  out.plan = std::move(*plan);
  return out;
}

std::string random_hex(size_t n) {
  std::random_device rd;
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += digits[rd() % 16];
  return s;
}

void set_env(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  for (auto& e : env)
    if (e.compare(0, key.size() + 1, key + "=") == 0) {
      e = key + "=" + value;
      return;
    }
  env.push_back(key + "=" + value);
}

// The PID a scratch name "<prefix><pid>-..." carries, or 0.
pid_t owner_pid(const std::string& name, std::string_view prefix) {
  if (name.rfind(prefix, 0) != 0) return 0;
  size_t dash = name.find('-', prefix.size());
  if (dash == std::string::npos) return 0;
  try {
    return static_cast<pid_t>(std::stol(name.substr(prefix.size(), dash - prefix.size())));
  } catch (const std::exception&) {
    return 0;
  }
}

bool alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

void sweep_stale_builds(const stdfs::path& work_dir, engine::Engine& engine,
                        const std::string& cgroup_parent) {
  std::error_code ec;
  // RUN containers of dead builds: their init may still run (it never dies with its daemon).
  for (stdfs::directory_iterator it(work_dir / "containers", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    pid_t pid = owner_pid(name, "stkb-");
    if (pid <= 0 || alive(pid)) continue;
    engine::ContainerSpec spec;
    spec.name = name;
    spec.cgroup = cgroup_parent + "/" + name;
    spec.dir = it->path();
    for (int i = 0; i < 100; i++) {
      auto pids = engine.cgroups().pids(spec.cgroup);
      if (!pids || pids->empty()) break;
      for (pid_t p : *pids) ::kill(p, SIGKILL);
      ::usleep(10'000);
    }
    (void)engine.remove(spec);
    (void)remove_tree(spec.dir);
  }
  // Scratch directories of dead builds, with the overlays they had mounted (deepest first).
  for (stdfs::directory_iterator it(work_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    pid_t pid = owner_pid(name, "b-");
    if (pid <= 0 || alive(pid)) continue;
    std::string prefix = it->path().string() + "/";
    std::vector<std::string> mounts;
    if (auto info = read_file("/proc/self/mountinfo", 16 << 20, "mountinfo")) {
      size_t pos = 0;
      while (pos < info->size()) {
        size_t nl = info->find('\n', pos);
        std::string line = info->substr(pos, nl == std::string::npos ? nl : nl - pos);
        pos = nl == std::string::npos ? info->size() : nl + 1;
        // Field 5 is the mount point (proc(5)); our paths have no blanks to escape.
        size_t f = 0;
        for (int k = 0; k < 4 && f != std::string::npos; k++) f = line.find(' ', f + 1);
        if (f == std::string::npos) continue;
        size_t e = line.find(' ', f + 1);
        std::string point = line.substr(f + 1, e == std::string::npos ? e : e - f - 1);
        if (point.rfind(prefix, 0) == 0) mounts.push_back(point);
      }
    }
    std::sort(mounts.rbegin(), mounts.rend());
    for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
    (void)remove_tree(it->path());
  }
}

std::string next_state_id(std::string_view parent, std::string_view step) {
  std::string text = "stack-build-v1\n" + std::string(parent) + "\n" + std::string(step);
  return fs::sha256_hex(text);
}

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

std::vector<stdfs::path> StageState::layer_dirs(const fs::ImageStore& store) const {
  std::vector<stdfs::path> out;
  for (const auto& l : recipe.layers) out.push_back(fs::layer_path(store, l));
  return out;
}

Vars StageState::vars() const {
  Vars v = args;
  for (const auto& e : recipe.config.env) {
    size_t eq = e.find('=');
    v[e.substr(0, eq)] = eq == std::string::npos ? "" : e.substr(eq + 1);
  }
  return v;
}

Builder::Builder(const BuildRequest& request, BuildHost& host, const Progress& progress,
                 const Dockerfile& df, const StagePlan& plan, IgnoreRules rules)
    : req_(request), host_(host), progress_(progress), df_(df), plan_(plan),
      rules_(std::move(rules)),
      build_id_(std::to_string(::getpid()) + "-" + random_hex(8)) {}

void Builder::emit(BuildEvent::Kind kind, std::string text) {
  if (!progress_) return;
  BuildEvent e;
  e.kind = kind;
  e.stage = stage_label_;
  e.step = step_;
  e.steps = steps_;
  e.line = line_;
  e.instruction = instruction_;
  e.text = std::move(text);
  progress_(e);
}

stdfs::path Builder::scratch(const std::string& what) {
  return host_.work_dir / ("b-" + build_id_) / (what + "-" + std::to_string(++scratch_n_));
}

Result<StageState> Builder::image_state(const std::string& reference, const std::string& platform,
                                        int line) {
  std::string host_plat = host_platform();
  std::string want = platform.empty() ? req_.platform : platform;
  if (!want.empty()) {
    std::string w = want.find('/') == std::string::npos ? "linux/" + want : want;
    if (w != host_plat && w.rfind(host_plat + "/", 0) != 0)
      return fail(at(line) + ": platform " + want + " is not supported: this host builds " +
                  host_plat + " only");
  }
  bool have = static_cast<bool>(host_.images.get(reference));
  if (!have || req_.pull) {
    if (!host_.pull) {
      if (!have)
        return fail(at(line) + ": image " + reference + " is not in the store (pull it first)");
    } else if (auto r = host_.pull(reference, host_plat); !r) {
      if (!have) return fail(r.error().wrap(at(line) + ": pull " + reference));
      emit(BuildEvent::Kind::kNote, "pull " + reference + " failed, using the stored image: " +
                                        r.error().message);
    }
  }
  auto img = host_.images.get(reference);
  if (!img) return fail(img.error().wrap(at(line)));
  auto recipe = fs::image_recipe(host_.images, reference);
  if (!recipe) return fail(recipe.error().wrap(at(line)));
  std::string arch = host_plat.substr(host_plat.find('/') + 1);
  if (!recipe->architecture.empty() && recipe->architecture != arch)
    return fail(at(line) + ": image " + reference + " is for " + recipe->os + "/" +
                recipe->architecture + ", this host runs " + host_plat);
  StageState st;
  st.recipe = std::move(*recipe);
  st.recipe.history.clear();
  st.id = "image:" + img->id;
  return st;
}

Result<void> Builder::from(const Stage& stage, StageState& st) {
  if (stage.base_stage >= 0) {
    st = done_.at(stage.base_stage);
    st.args.clear();
    st.cmd_set = false;
  } else if (stage.base == "scratch") {
    st = StageState{};
    std::string plat = host_platform();
    st.recipe.architecture = plat.substr(plat.find('/') + 1);
    st.id = "scratch";
  } else {
    auto s = image_state(stage.base, stage.platform, stage.line);
    if (!s) return fail(s.error());
    st = std::move(*s);
  }
  return {};
}

Result<void> Builder::config_step(const Instruction& ins, StageState& st) {
  const std::string& k = ins.keyword;
  auto& c = st.recipe.config;
  Vars vars = st.vars();
  auto err = [&](const Error& e) { return fail(at(ins.line) + ": " + k + ": " + e.message); };
  if (k == "ARG") {
    auto decls = arg_decls(ins.text, vars, df_.escape);
    if (!decls) return err(decls.error());
    for (const auto& [name, def] : *decls) {
      if (auto it = req_.args.find(name); it != req_.args.end()) st.args[name] = it->second;
      else if (def) st.args[name] = *def;
      else if (auto g = plan_.global_args.find(name); g != plan_.global_args.end())
        st.args[name] = g->second;
    }
  } else if (k == "ENV") {
    auto kv = key_values(ins.text, vars, df_.escape, true);
    if (!kv) return err(kv.error());
    for (const auto& [key, value] : *kv) set_env(c.env, key, value);
  } else if (k == "LABEL") {
    auto kv = key_values(ins.text, vars, df_.escape, true);
    if (!kv) return err(kv.error());
    for (const auto& [key, value] : *kv) c.labels[key] = value;
  } else if (k == "MAINTAINER") {
    auto v = expand_word(ins.text, vars, df_.escape);
    if (!v) return err(v.error());
    c.labels["maintainer"] = *v;  // MAINTAINER is deprecated: docker suggests this label
  } else if (k == "EXPOSE") {
    auto words = expand_words(ins.text, vars, df_.escape);
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
      auto words = expand_words(ins.text, vars, df_.escape);
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
    auto v = expand_word(ins.text, vars, df_.escape);
    if (!v) return err(v.error());
    c.user = *v;
  } else if (k == "STOPSIGNAL") {
    auto v = expand_word(ins.text, vars, df_.escape);
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

Result<void> Builder::apply(const Instruction& ins, const Stage& stage, StageState& st) {
  const std::string& k = ins.keyword;
  if (k == "RUN") return run_step(ins, st);
  if (k == "COPY" || k == "ADD") return copy_step(ins, stage, st);
  if (k == "WORKDIR") return workdir_step(ins, st);
  if (auto r = config_step(ins, st); !r) return r;
  // ARG values reach the identity through the RUN steps that see them; the rest is config.
  std::string text = ins.source();
  if (k == "ARG") {
    text += "\n";
    for (const auto& [name, v] : st.args) text += name + "=" + v + "\n";
  }
  st.id = next_state_id(st.id, text);
  st.recipe.history.push_back(ins.source());
  return {};
}

Result<bool> Builder::cached(const std::string& key, StageState& st, const std::string& history) {
  if (req_.no_cache) return false;
  auto hit = fs::cache_lookup(host_.images, key);
  if (!hit) return fail(hit.error());
  if (!*hit) return false;
  st.recipe.layers.push_back(**hit);
  st.recipe.history.push_back(history);
  st.id = key;
  ++cached_;
  emit(BuildEvent::Kind::kCached);
  return true;
}

Result<void> Builder::add_layer(const std::string& key, const stdfs::path& upper, StageState& st,
                                const std::string& history) {
  auto layer = fs::add_upper_layer(host_.images, upper);
  if (!layer) return fail(layer.error().wrap(at(line_) + ": store the layer"));
  layer->created = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (auto r = fs::cache_record(host_.images, key, *layer); !r)
    return fail(r.error().wrap(at(line_) + ": record the cache"));
  st.recipe.layers.push_back(*layer);
  st.recipe.history.push_back(history);
  st.id = key;
  return {};
}

Result<BuildResult> Builder::run() {
  int64_t start = now_ms();
  for (int i : plan_.order) steps_ += 1 + static_cast<int>(plan_.stages[i].body.size());
  for (const auto& n : df_.notes) emit(BuildEvent::Kind::kNote, n);
  for (const auto& a : plan_.unused_args)
    emit(BuildEvent::Kind::kNote, "build arg " + a + " is not consumed by any ARG");
  if (auto r = ::mkdir(host_.work_dir.c_str(), 0700); r != 0 && errno != EEXIST)
    return fail_errno("create " + host_.work_dir.string());
  sweep_stale_builds(host_.work_dir, host_.engine, host_.cgroup_parent);
  stdfs::path mine = host_.work_dir / ("b-" + build_id_);
  if (::mkdir(mine.c_str(), 0700) != 0) return fail_errno("create " + mine.string());
  auto cleanup = ScopeGuard([&] { (void)remove_tree(mine); });

  for (int i : plan_.order) {
    const Stage& stage = plan_.stages[i];
    stage_label_ = stage.label();
    StageState st;
    auto run_one = [&](const Instruction* ins) -> Result<void> {
      if (cancelled()) return fail("build cancelled");
      ++step_;
      line_ = ins ? ins->line : stage.line;
      instruction_ = ins ? ins->source() : "FROM " + stage.base +
                                               (stage.name.empty() ? "" : " AS " + stage.name);
      emit(BuildEvent::Kind::kStep);
      int64_t t0 = now_ms();
      auto r = ins ? apply(*ins, stage, st) : from(stage, st);
      if (!r) {
        emit(BuildEvent::Kind::kError, r.error().message);
        return r;
      }
      BuildEvent done;
      if (progress_) {
        done.kind = BuildEvent::Kind::kDone;
        done.stage = stage_label_;
        done.step = step_;
        done.steps = steps_;
        done.line = line_;
        done.instruction = instruction_;
        done.duration_ms = now_ms() - t0;
        progress_(done);
      }
      return {};
    };
    if (auto r = run_one(nullptr); !r) return fail(r.error());
    for (const auto& ins : stage.body)
      if (auto r = run_one(&ins); !r) return fail(r.error());
    done_[i] = std::move(st);
  }

  StageState& final_state = done_.at(plan_.target);
  fs::ImageRecipe recipe = final_state.recipe;
  for (const auto& [k, v] : req_.labels) recipe.config.labels[k] = v;
  // An all-cached rebuild gives the same image: "created" is the newest layer's, not now.
  for (const auto& l : recipe.layers) recipe.created = std::max(recipe.created, l.created);
  auto img = fs::commit_image(host_.images, recipe, req_.tags);
  if (!img) return fail(img.error().wrap("store the built image"));
  BuildResult out;
  out.image_id = img->id;
  out.tags = img->tags;
  out.steps = steps_;
  out.cached = cached_;
  out.duration_ms = now_ms() - start;
  log::get("build")->info("built image name={} id={} steps={} cached={} ms={}", req_.name,
                          out.image_id, out.steps, out.cached, out.duration_ms);
  return out;
}

Result<BuildResult> build(const BuildRequest& request, BuildHost& host, const Progress& progress) {
  auto loaded = load(request);
  if (!loaded) {
    if (progress) {
      BuildEvent e;
      e.kind = BuildEvent::Kind::kError;
      e.text = loaded.error().message;
      progress(e);
    }
    return fail(loaded.error());
  }
  if (request.network == NetworkMode::kDefault && host.network == nullptr) {
    bool has_run = false;
    for (int i : loaded->plan.order)
      for (const auto& ins : loaded->plan.stages[i].body)
        has_run |= ins.keyword == "RUN" && !(ins.flag("network") && ins.flag("network")->value != "default");
    if (has_run)
      return fail("build " + request.name +
                  ": network default needs the daemon's build network (none was given); use "
                  "network: none or host");
  }
  auto rules = load_ignore(request.context, loaded->dockerfile_path);
  if (!rules) return fail(rules.error());
  Builder b(request, host, progress, loaded->df, loaded->plan, std::move(*rules));
  return b.run();
}

Result<void> check(const BuildRequest& request) {
  auto loaded = load(request);
  if (!loaded) return fail(loaded.error());
  if (auto rules = load_ignore(request.context, loaded->dockerfile_path); !rules)
    return fail(rules.error());
  return {};
}

}  // namespace stack::build
