// RUN: the command as a container of stack's engine on the stage's layers (the image's env,
// user and working directory, build args as environment, the build's network), its output
// streamed line by line, its writable layer (an overlay upper directory) stored as the next
// layer when it exits 0. Root on the host.
#include <signal.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>

#include "build/builder.h"
#include "common/files.h"
#include "common/scope_guard.h"
#include "engine/container.h"
#include "engine/logs.h"
#include "fs/image_store.h"

namespace stack::build {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// The command of a RUN: exec form as it is; shell form through the stage's SHELL; heredocs
// (BuildKit's): a RUN that is only "<<EOF" runs the heredoc as its script (a script with a
// "#!" line is run as a file, AS_FILE, mounted at /dev/pipes/EOF as BuildKit does), otherwise
// the heredocs go to the shell with the command, which reads them itself.
std::vector<std::string> run_argv(const Instruction& ins, const std::vector<std::string>& shell,
                                  const Heredoc** as_file) {
  *as_file = nullptr;
  if (ins.exec_form) return ins.exec;
  std::vector<std::string> argv = shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : shell;
  std::string script = ins.text;
  if (!ins.heredocs.empty()) {
    std::string t = script;
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
    const Heredoc& h = ins.heredocs.front();
    bool only = ins.heredocs.size() == 1 &&
                (t == "<<" + h.name || t == "<<-" + h.name || t == "<<\"" + h.name + "\"" ||
                 t == "<<'" + h.name + "'");
    if (only && h.content.rfind("#!", 0) == 0) {
      *as_file = &h;
      return {"/dev/pipes/" + h.name};
    }
    if (only) {
      script = h.content;
    } else {
      for (const auto& d : ins.heredocs) script += "\n" + d.content + d.name;
    }
  }
  argv.push_back(script);
  return argv;
}

// REL as the image LAYERS (lowest first) show it: the topmost entry, unless a whiteout hides it.
std::optional<struct stat> in_layers(const std::vector<stdfs::path>& layers, const std::string& rel) {
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    struct stat st {};
    if (::lstat((*it / rel).c_str(), &st) != 0) continue;
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) return std::nullopt;
    return st;
  }
  return std::nullopt;
}

// The engine makes mount points in the container's root when the image lacks them (/etc/hosts,
// /etc/hostname, /etc/resolv.conf, /dev, /proc, /sys): empty, in the writable layer. They are
// not the command's doing, so they leave the RUN's diff, as in BuildKit; so does /etc when it
// is left an untouched copy-up.
void strip_mount_points(const stdfs::path& upper, const std::vector<stdfs::path>& layers) {
  for (const char* f : {"etc/hosts", "etc/hostname", "etc/resolv.conf"}) {
    struct stat st {};
    if (::lstat((upper / f).c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != 0) continue;
    if (!in_layers(layers, f)) ::unlink((upper / f).c_str());
  }
  for (const char* d : {"dev", "proc", "sys", "etc"}) {
    struct stat st {};
    if (::lstat((upper / d).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    std::error_code ec;
    if (!stdfs::is_empty(upper / d, ec) || ec) continue;
    char opaque = 0;
    if (::lgetxattr((upper / d).c_str(), "trusted.overlay.opaque", &opaque, 1) == 1) continue;
    auto lower = in_layers(layers, d);
    bool copy_up = lower && S_ISDIR(lower->st_mode) && lower->st_mode == st.st_mode &&
                   lower->st_uid == st.st_uid && lower->st_gid == st.st_gid;
    if (!lower || copy_up) ::rmdir((upper / d).c_str());
  }
}

std::string host_resolv_conf() {
  auto text = read_file("/etc/resolv.conf", 64 << 10, "resolv.conf");
  return text ? *text : "";
}

}  // namespace

Result<void> Builder::run_step(const Instruction& ins, StageState& st) {
  NetworkMode net = req_.network;
  if (const Flag* f = ins.flag("network"))
    net = f->value == "none" ? NetworkMode::kNone : f->value == "host" ? NetworkMode::kHost : net;
  const Heredoc* script = nullptr;
  std::vector<std::string> argv = run_argv(ins, st.recipe.shell, &script);

  // The environment: the image's, and the build args its ENV does not set (Docker passes
  // them to RUN, not into the image).
  std::vector<std::string> env = st.recipe.config.env;
  for (const auto& [k, v] : st.args) {
    bool in_env = false;
    for (const auto& e : env) in_env |= e.compare(0, k.size() + 1, k + "=") == 0;
    if (!in_env) env.push_back(k + "=" + v);
  }
  bool has_path = false;
  for (const auto& e : env) has_path |= e.rfind("PATH=", 0) == 0;
  if (!has_path) env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");

  std::string key_text = "RUN network=" + std::to_string(static_cast<int>(net)) + "\n";
  for (const auto& a : argv) key_text += a + '\0';
  if (script) key_text += "\nscript:" + script->content;
  key_text += "\nargs:";
  for (const auto& [k, v] : st.args) key_text += k + "=" + v + '\0';
  std::string key = next_state_id(st.id, key_text);
  if (auto hit = cached(key, st, ins.source()); !hit) return fail(hit.error());
  else if (*hit) return {};

  if (st.recipe.layers.empty())
    return fail(at(ins.line) + ": RUN in a stage FROM scratch with no files: there is no shell to run it");

  engine::ContainerSpec spec;
  spec.name = "stkb-" + build_id_ + "-" + std::to_string(step_);
  spec.cgroup = host_.cgroup_parent + "/" + spec.name;
  spec.dir = host_.work_dir / "containers" / spec.name;
  spec.layers = st.layer_dirs(host_.images);
  spec.hostname = "stack-build";
  spec.process.argv = argv;
  spec.process.env = env;
  spec.process.cwd = st.recipe.config.working_dir.empty() ? "/" : st.recipe.config.working_dir;
  if (auto r = engine::resolve_user(st.recipe.config.user, spec.layers, spec.process); !r)
    return fail(at(ins.line) + ": RUN as USER " + st.recipe.config.user + ": " + r.error().message);
  spec.process.capabilities = engine::default_capabilities();
  // As docker build: setuid programs in RUN work (no no_new_privs).
  spec.process.no_new_privs = false;
  spec.shm_size = req_.shm_size;
  spec.log_max_size = 64 << 20;
  spec.log_max_files = 1;
  spec.hosts = "127.0.0.1\tlocalhost " + spec.hostname +
               "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const auto& h : req_.extra_hosts) {
    size_t sep = h.find('=');
    if (sep == std::string::npos) sep = h.find(':');
    if (sep == std::string::npos)
      return fail("extra_hosts \"" + h + "\": expected NAME:IP or NAME=IP");
    spec.hosts += h.substr(sep + 1) + "\t" + h.substr(0, sep) + "\n";
  }
  if (net == NetworkMode::kHost) {
    spec.host_network = true;
    spec.resolv_conf = host_resolv_conf();
  } else if (net == NetworkMode::kDefault) {
    if (host_.network == nullptr)
      return fail(at(ins.line) + ": RUN needs the build network, which the caller did not give");
    auto resolv = host_.network->resolv_conf();
    if (!resolv) return fail(resolv.error().wrap(at(ins.line) + ": build network"));
    spec.resolv_conf = *resolv;
  }

  if (script) {
    stdfs::path file = scratch("script");
    std::error_code ec;
    stdfs::create_directories(file.parent_path(), ec);
    if (auto r = write_file(file, script->content); !r) return fail(r.error().wrap(at(ins.line)));
    ::chmod(file.c_str(), 0755);
    model::BindMount b;
    b.source = file;
    b.target = "/dev/pipes/" + script->name;
    b.read_only = true;
    b.create_source = false;
    spec.mounts.push_back(b);
  }

  auto dir_made = [&]() -> Result<void> {
    std::error_code ec;
    stdfs::create_directories(spec.dir.parent_path(), ec);
    if (ec) return fail("create " + spec.dir.parent_path().string() + ": " + ec.message());
    ::chmod(spec.dir.parent_path().c_str(), 0700);
    return {};
  };
  if (auto r = dir_made(); !r) return fail(r.error());
  // Whatever happens, the container and its directory go (after the layer is stored).
  auto removal = ScopeGuard([&] {
    (void)host_.engine.remove(spec);
    (void)remove_tree(spec.dir);
  });
  bool attached = false;
  auto detach = ScopeGuard([&] {
    if (attached) host_.network->detach(spec.name);
  });

  auto created = host_.engine.create(spec);
  if (!created) return fail(created.error().wrap(at(ins.line) + ": RUN"));
  if (net == NetworkMode::kDefault) {
    if (auto r = host_.network->attach(spec.name, created->netns_fd(), created->pid()); !r) {
      host_.engine.abandon(std::move(*created));
      return fail(r.error().wrap(at(ins.line) + ": attach the build network"));
    }
    attached = true;
  }
  auto proc = host_.engine.start(std::move(*created));
  if (!proc) return fail(proc.error().wrap(at(ins.line) + ": RUN"));

  auto follower = engine::LogFollower::open(spec.dir, true);
  auto pump = [&](bool wait) {
    if (!follower) return;
    auto recs = wait ? follower->next(100ms) : follower->read_new();
    if (!recs) return;
    for (const auto& r : *recs) emit(BuildEvent::Kind::kOutput, r.text);
  };
  bool killed = false;
  while (!host_.engine.wait_exit(*proc, follower ? 0ms : 100ms)) {
    if (cancelled() && !killed) {
      (void)host_.engine.signal(*proc, SIGKILL);
      killed = true;
    }
    pump(true);
  }
  pump(false);
  auto exit = host_.engine.exit_info(spec);
  if (!exit) return fail(exit.error().wrap(at(ins.line) + ": RUN"));
  if (killed) return fail(at(ins.line) + ": RUN: build cancelled");
  if (exit->code != 0) {
    std::string shown = ins.text.size() > 80 ? ins.text.substr(0, 77) + "..." : ins.text;
    return fail(at(ins.line) + ": RUN " + shown + ": exit code " + std::to_string(exit->code));
  }
  if (attached) {
    host_.network->detach(spec.name);
    attached = false;
  }
  strip_mount_points(spec.dir / "upper", spec.layers);
  return add_layer(key, spec.dir / "upper", st, ins.source());
}

}  // namespace stack::build
