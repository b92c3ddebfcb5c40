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
  // An image without history for each layer (an imported rootfs has none): entries for them
  // first, so the history's layers keep matching the image's.
  size_t with_layer = 0;
  for (const auto& h : st.recipe.history) with_layer += h.empty_layer ? 0 : 1;
  while (with_layer < st.recipe.layers.size()) {
    st.recipe.history.insert(st.recipe.history.begin(), fs::HistoryEntry{"imported", false});
    ++with_layer;
  }
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
  st.recipe.history.push_back(fs::HistoryEntry{ins.source(), true});
  return {};
}

Result<bool> Builder::cached(const std::string& key, StageState& st, const std::string& history) {
  if (req_.no_cache) return false;
  auto hit = fs::cache_lookup(host_.images, key);
  if (!hit) return fail(hit.error());
  if (!*hit) return false;
  st.recipe.layers.push_back(**hit);
  st.recipe.history.push_back(fs::HistoryEntry{history, false});
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
  st.recipe.history.push_back(fs::HistoryEntry{history, false});
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

bool is_config_instruction(const std::string& k) {
  return k != "RUN" && k != "COPY" && k != "ADD" && k != "WORKDIR" && k != "FROM";
}

Result<void> check(const BuildRequest& request) {
  auto loaded = load(request);
  if (!loaded) return fail(loaded.error());
  // The config instructions of the stages to build, applied to an empty image: their own
  // errors (a bad EXPOSE port, a HEALTHCHECK flag, an unset ${VAR:?}) show before any build.
  const auto& plan = loaded->plan;
  ConfigContext cx{request.args, plan.global_args, loaded->df.escape, loaded->df.name};
  for (int i : plan.order) {
    StageState st;
    for (const auto& ins : plan.stages[i].body)
      if (is_config_instruction(ins.keyword))
        if (auto r = apply_config(ins, st, cx); !r) return fail(r.error());
  }
  if (auto rules = load_ignore(request.context, loaded->dockerfile_path); !rules)
    return fail(rules.error());
  return {};
}

}  // namespace stack::build
