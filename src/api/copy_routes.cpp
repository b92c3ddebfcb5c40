// See copy_routes.h. What can be refused is refused before the upgrade (a JSON error: no such
// container, no such path); then a thread of its own per copy does the blocking file I/O and
// speaks the frames on its own copy of the socket, so neither the loop nor the worker pool
// waits for a slow client (its socket timeouts bound a client that stalls). Every path is
// resolved in the container's root (/proc/PID/root, checked against the container's start
// time; a container that does not run: its layers mounted read-only, engine/stopped_root.h)
// with RESOLVE_IN_ROOT: what the container planted cannot lead the daemon to the host's.
#include "api/copy_routes.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstring>
#include <filesystem>

#include "api/exec_stream.h"
#include "api/frame_socket.h"
#include "common/log.h"
#include "common/tree_copy.h"
#include "engine/container.h"
#include "engine/stopped_root.h"
#include "reconciler/controller.h"
#include "reconciler/daemon.h"
#include "state/store.h"

namespace stack::api {

namespace asio = boost::asio;
using nlohmann::json;
using reconciler::awaitable;
using reconciler::Daemon;

namespace {

struct Job {
  std::string container;
  bool out = true;
  std::string path;
  UniqueFd root;  // the container's "/"
  copy::Destination dest;
  copy::PackOptions pack;
  copy::UnpackOptions unpack;
};

void serve(const Job& job, int sock, std::string after) {
  copy::Tree tree{job.root.get(), true};
  Result<void> result;
  bool sock_broken = false;
  if (job.out) {
    result = copy::pack(tree, job.path, job.pack, [&](std::string_view data) -> Result<void> {
      while (!data.empty()) {
        auto piece = data.substr(0, exec::kChunk);
        if (!send_all(sock, exec::encode(exec::Type::stdout_data, piece))) {
          sock_broken = true;
          return fail("the client is gone");
        }
        data.remove_prefix(piece.size());
      }
      return {};
    });
  } else {
    FrameSource source(sock, std::move(after));
    tar::Reader reader([&](char* buf, size_t n) { return source.read(buf, n); });
    auto r = copy::unpack(tree, job.dest, reader, job.unpack);
    source.drain();
    if (r) {
      log::get("api")->debug("cp into container={} entries={} bytes={}", job.container,
                             r->entries, r->bytes);
    } else {
      result = fail(r.error());
    }
  }
  if (sock_broken) return;
  if (result) {
    send_all(sock, exec::encode_exit(0));
  } else {
    log::get("api")->info("cp failed container={} path={}: {}", job.container, job.path,
                          result.error().message);
    send_all(sock, exec::encode(exec::Type::error, result.error().message));
  }
  ::shutdown(sock, SHUT_RDWR);
}

// "/a/./b/../c/" as "/a/c": what a mount's target is compared with.
std::string normal_path(const std::string& path) {
  std::string p = std::filesystem::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

// Replica INDEX of SERVICE when it exists and does not run (state after the daemon's refresh
// in exec_target), found by its service and number; none otherwise.
Result<std::optional<state::ContainerRecord>> stopped_container(Daemon& d,
                                                                const std::string& project,
                                                                const std::string& service,
                                                                int index) {
  auto all = d.controller().store().list_containers(project);
  if (!all) return fail(all.error());
  for (auto& c : *all)
    if (c.service == service && c.number == index &&
        c.state != state::ContainerState::kRunning && c.state != state::ContainerState::kRestarting)
      return std::optional<state::ContainerRecord>(std::move(c));
  return std::optional<state::ContainerRecord>();
}

}  // namespace

bool is_copy_route(const Target& t) {
  return t.path.size() == 4 && t.path[1] == "projects" && t.path[3] == "cp";
}

awaitable<Reply> copy_route(Daemon& d, const Request& req, const Target& t, const json& body) {
  const std::string& project = t.path[2];
  auto job = std::make_shared<Job>();
  std::string service, direction;
  int index = 1;
  bool contents = false, archive = false, parents = false, follow = false;
  try {
    service = body.value("service", "");
    index = body.value("index", 1);
    direction = body.value("direction", "");
    job->path = body.value("path", "");
    contents = body.value("contents", false);
    archive = body.value("archive", false);
    parents = body.value("parents", false);
    follow = body.value("follow", false);
  } catch (const std::exception& e) {
    co_return error_reply(400, std::string("bad request: ") + e.what());
  }
  if (service.empty()) co_return error_reply(400, "cp needs a service");
  if (direction != "in" && direction != "out")
    co_return error_reply(400, "cp direction is \"in\" or \"out\", got \"" + direction + "\"");
  if (job->path.empty() || job->path.front() != '/' ||
      job->path.find('\0') != std::string::npos)
    co_return error_reply(400, "the container's path must be absolute, got \"" + job->path + "\"");
  if (req.upgrade != kCopyUpgrade)
    co_return error_reply(400, "cp streams over an upgraded connection: send Connection: Upgrade "
                               "and Upgrade: " + std::string(kCopyUpgrade));
  job->out = direction == "out";
  std::shared_ptr<const model::RuntimeRecord> runtime;
  bool stopped_root = false;
  auto target = d.exec_target(project, service, index);
  if (target) {
    job->container = target->name;
    runtime = target->runtime;
    UniqueFd root(::open(("/proc/" + std::to_string(target->pid) + "/root").c_str(),
                         O_PATH | O_DIRECTORY | O_CLOEXEC));
    // Checked after opening: the root is of the container that was started, not of a process
    // that reused its PID.
    if (!root || engine::process_start_time(target->pid) != target->start_time)
      co_return error_reply(409, "cp: container " + job->container + " is not running");
    job->root = std::move(root);
  } else {
    // Not running (created, exited): its own filesystem, mounted read-only for the copy.
    auto stopped = stopped_container(d, project, service, index);
    if (!stopped) co_return error_reply(500, stopped.error().wrap("cp").message);
    if (!*stopped) co_return error_reply(409, target.error().wrap("cp").message);
    const auto& rec = **stopped;
    job->container = rec.name;
    std::string path = normal_path(job->path);
    if (!job->out)
      co_return error_reply(409, "cp into " + rec.name + ": it is " +
                                     state::state_name(rec.state) +
                                     "; copying into a container that does not run is not "
                                     "supported (start it)");
    if (!rec.runtime) co_return error_reply(409, "cp from " + rec.name + ": " + rec.runtime_error);
    if (auto m = engine::mount_holding(rec.runtime->spec, path))
      co_return error_reply(409, "cp from " + rec.name + ": " + path + " is on " + *m +
                                     ", a mount of the running container (a volume, bind or "
                                     "file stack provides), not in its filesystem: start it to "
                                     "copy from it");
    auto root = engine::open_stopped_root(rec.runtime->spec);
    if (!root) co_return error_reply(409, root.error().wrap("cp from " + rec.name).message);
    job->root = std::move(*root);
    runtime = rec.runtime;
    stopped_root = true;
  }
  copy::Tree tree{job->root.get(), true};

  const auto& spec = runtime->spec;
  if (spec.userns) {
    auto base_u = spec.userns->uid_base, base_g = spec.userns->gid_base,
         count = spec.userns->count;
    job->pack.uid = [=](uint64_t id) -> std::optional<uint64_t> {
      if (id >= base_u && id < uint64_t{base_u} + count) return id - base_u;
      return std::nullopt;
    };
    job->pack.gid = [=](uint64_t id) -> std::optional<uint64_t> {
      if (id >= base_g && id < uint64_t{base_g} + count) return id - base_g;
      return std::nullopt;
    };
  }
  if (job->out && follow && !copy::names_contents(job->path)) {
    // `cp -L`: the link's target, looked up in the container's root step by step, archived
    // under the link's own name (as docker cp -L).
    auto name = job->path.substr(job->path.find_last_of('/') + 1);
    auto at = copy::follow_links(tree, job->path);
    if (!at)
      co_return error_reply(at.error().sys_errno == ENOENT ? 404 : 400,
                            "cp from " + job->container + ": " + at.error().message);
    job->path = *at;
    if (!name.empty()) job->pack.name = name;
    if (auto m = stopped_root ? engine::mount_holding(spec, normal_path(job->path)) : std::nullopt)
      co_return error_reply(409, "cp from " + job->container + ": the link leads to " + *m +
                                     ", a mount of the running container: start it to copy "
                                     "from it");
  }
  if (job->out) {
    auto found = copy::open_in(tree, job->path, O_PATH | O_NOFOLLOW);
    if (!found)
      co_return error_reply(found.error().sys_errno == ENOENT ? 404 : 400,
                            "cp from " + job->container + ": " + found.error().message);
  } else {
    if (parents && !contents) {  // the file's directory, made as mkdir -p would
      std::string dir = job->path.substr(0, job->path.find_last_of('/'));
      if (auto made = copy::destination(tree, dir.empty() ? "/" : dir, true, true); !made)
        co_return error_reply(400, "cp into " + job->container + ": " + made.error().message);
    }
    auto dest = copy::destination(tree, job->path, contents, parents);
    if (!dest) co_return error_reply(404, "cp into " + job->container + ": " + dest.error().message);
    job->dest = *dest;
    auto shift = [&](uint32_t base, uint32_t count) -> copy::IdMap {
      if (!spec.userns) return [](uint64_t id) -> std::optional<uint64_t> { return id; };
      return [base, count](uint64_t id) -> std::optional<uint64_t> {
        if (id >= count) return std::nullopt;
        return base + id;
      };
    };
    if (archive) {
      job->unpack.uid = shift(spec.userns ? spec.userns->uid_base : 0,
                              spec.userns ? spec.userns->count : 0);
      job->unpack.gid = shift(spec.userns ? spec.userns->gid_base : 0,
                              spec.userns ? spec.userns->count : 0);
    } else {  // docker cp: the files belong to the container's user
      uid_t uid = spec.process.uid, gid = spec.process.gid;
      if (spec.userns) uid += spec.userns->uid_base, gid += spec.userns->gid_base;
      job->unpack.owner = std::make_pair(uid, gid);
    }
  }
  log::get("api")->info("cp {} container={} path={}", job->out ? "out of" : "into",
                        job->container, job->path);
  Reply reply{101, {}, {}};
  reply.takeover = [job](int fd, std::string after) {
    return serve_upgraded(fd, std::move(after), std::string(kCopyUpgrade),
                          [job](int sock, std::string rest) {
                            serve(*job, sock, std::move(rest));
                          });
  };
  co_return reply;
}

}  // namespace stack::api
