// See attach_routes.h. The terminal's master (or the stdin pipe's writing end) is held by the
// container's init at fd 3 (engine/init/init.c), not by the daemon: a daemon restart never
// hangs the terminal up, and each attach takes its own copy with pidfd_getfd(2), checked to
// be what the service was given (a devpts multiplexer, or a pipe). Each attach runs on a thread
// of its own with blocking I/O (as cp does), so a slow client never holds the loop.
#include "api/attach_routes.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <thread>

#include "api/exec_stream.h"
#include "common/log.h"
#include "engine/container.h"
#include "engine/logs.h"
#include "engine/service_stdin.h"
#include "reconciler/controller.h"
#include "reconciler/daemon.h"

namespace stack::api {

namespace asio = boost::asio;
using nlohmann::json;
using reconciler::awaitable;
using reconciler::Daemon;

namespace {

constexpr int kInitTerminalFd = 3;          // where the init keeps it (init.c)
constexpr size_t kMaxQueuedInput = 1 << 20;  // stdin the service has not read yet
constexpr int kSendTimeoutSeconds = 30;      // a client that stops reading is dropped

enum class End { client_gone, exited };

struct Job {
  std::string project, container;
  bool tty = false;
  UniqueFd pidfd;  // the container's init
  UniqueFd input;  // our copy of the terminal's master or of the stdin pipe; empty: no stdin
  // `run -i` without a terminal: the end of the client's stdin is the end of the service's.
  bool close_stdin = false;
  std::optional<engine::LogFollower> follower;
  End end = End::client_gone;
};

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, kSendTimeoutSeconds * 1000) <= 0) return false;
      continue;
    }
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool send_records(int sock, Job& job) {
  auto recs = job.follower->read_new();
  if (!recs) return true;
  for (const auto& r : *recs) {
    std::string text = r.partial ? r.text : r.text + "\n";
    auto type = r.stream == "stderr" ? exec::Type::stderr_data : exec::Type::stdout_data;
    for (std::string_view d = text; !d.empty();) {
      auto piece = d.substr(0, exec::kChunk);
      if (!send_all(sock, exec::encode(type, piece))) return false;
      d.remove_prefix(piece.size());
    }
  }
  return true;
}

void resize(const Job& job, std::string_view payload) {
  auto size = exec::decode_resize(payload);
  if (!size || !job.tty || !job.input) return;
  winsize ws{};
  ws.ws_col = size->first;
  ws.ws_row = size->second;
  (void)::ioctl(job.input.get(), TIOCSWINSZ, &ws);
}

void serve(Job& job, int sock, std::string after) {
  int flags = ::fcntl(sock, F_GETFL);
  ::fcntl(sock, F_SETFL, flags | O_NONBLOCK);
  std::string upgraded = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " +
                         std::string(kAttachUpgrade) + "\r\n\r\n";
  if (!send_all(sock, upgraded)) return;
  exec::FrameReader frames;
  frames.feed(after);
  std::string queued;  // stdin for the service
  bool eof = false;    // the client's stdin ended: once QUEUED is written, ours closes
  std::vector<char> buf(64 * 1024);
  for (;;) {
    for (;;) {  // the client's frames so far
      auto f = frames.next();
      if (!f) return;  // a protocol error: the client is dropped
      if (!*f) break;
      if ((*f)->type == exec::Type::stdin_data && job.input && !eof) queued += (*f)->payload;
      else if ((*f)->type == exec::Type::stdin_eof) eof = true;
      else if ((*f)->type == exec::Type::resize) resize(job, (*f)->payload);
    }
    if (!job.input) queued.clear();
    if (eof && queued.empty() && job.input) {
      job.input.reset();  // ours; the init's copy too for `run -i` (no terminal: a pipe)
      if (job.close_stdin && !job.tty)
        if (auto r = engine::close_service_stdin(job.pidfd.get()); !r)
          log::get("api")->warn("attach container={}: {}", job.container, r.error().message);
    }
    pollfd fds[4] = {
        {queued.size() < kMaxQueuedInput ? sock : -1, POLLIN, 0},
        {job.follower->fd(), POLLIN, 0},
        {job.pidfd.get(), POLLIN, 0},
        {!queued.empty() ? job.input.get() : -1, POLLOUT, 0},
    };
    if (::poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents & POLLIN)
      if (!send_records(sock, job)) return;
    if (fds[2].revents & POLLIN) {  // the init wrote its last log lines before it exited
      if (send_records(sock, job)) job.end = End::exited;
      return;
    }
    if (fds[3].revents & (POLLOUT | POLLERR | POLLHUP)) {
      ssize_t n = ::write(job.input.get(), queued.data(), queued.size());
      if (n > 0) queued.erase(0, static_cast<size_t>(n));
      else if (n < 0 && errno != EAGAIN && errno != EINTR) job.input.reset();  // it closed stdin
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(sock, buf.data(), buf.size(), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return;
      if (n > 0) frames.feed(std::string_view(buf.data(), static_cast<size_t>(n)));
    }
  }
}

// The attach on its thread; then, when the service exited, its exit code as the last frame.
awaitable<void> run(Daemon& d, std::shared_ptr<Job> job, int fd, std::string after) {
  int done[2];
  if (::pipe2(done, O_CLOEXEC) != 0) {
    ::close(fd);
    co_return;
  }
  auto ex = co_await asio::this_coro::executor;
  asio::posix::stream_descriptor finished(ex, done[0]);
  std::thread([job, fd, after = std::move(after), end = done[1]]() mutable {
    serve(*job, fd, std::move(after));
    ::close(end);
  }).detach();
  co_await finished.async_wait(asio::posix::stream_descriptor::wait_read, reconciler::no_throw);
  UniqueFd sock(fd);
  if (job->end != End::exited) co_return;
  // The supervisor records the exit from the same event: wait for it (bounded).
  int code = -1;
  for (int i = 0; i < 20 && code < 0; i++) {
    auto ps = d.ps(job->project, true);
    if (ps)
      for (const auto& c : *ps)
        if (c.name == job->container && c.state != "running") code = c.exit_code;
    if (code < 0) co_await d.changed().wait_for(std::chrono::milliseconds(250));
  }
  send_all(sock.get(), exec::encode_exit(code < 0 ? 0 : code));
  ::shutdown(sock.get(), SHUT_RDWR);
}

// A copy of the init's fd 3, checked to be what SPEC gave the service.
Result<UniqueFd> take_input(int pidfd, bool tty) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, kInitTerminalFd, 0)));
  if (!fd) return fail_errno("take the service's terminal from its init");
  struct stat st {};
  struct statfs sfs {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("stat the service's terminal");
  bool ok = tty ? S_ISCHR(st.st_mode) && major(st.st_rdev) == 5 && minor(st.st_rdev) == 2 &&
                      ::fstatfs(fd.get(), &sfs) == 0 && sfs.f_type == DEVPTS_SUPER_MAGIC
                : S_ISFIFO(st.st_mode);
  if (!ok) return fail("the init's descriptor 3 is not the service's terminal or stdin");
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) return fail_errno("fcntl");
  return fd;
}


}  // namespace

bool is_attach_route(const Target& t) {
  return t.path.size() == 4 && t.path[1] == "projects" && t.path[3] == "attach";
}

awaitable<Reply> attach_route(Daemon& d, const Request& req, const Target& t, const json& body) {
  if (req.method == "GET") {  // what the client needs to know first: is it a terminal
    auto index = t.integer("index", 1);
    if (!index) co_return error_reply(400, index.error().message);
    auto target =
        d.exec_target(t.path[2], t.get("service"), static_cast<int>(*index), t.get("container"));
    if (!target) co_return error_reply(409, target.error().wrap("attach").message);
    const auto& spec = target->runtime->spec;
    co_return Reply{200,
                    {{"container", target->name},
                     {"tty", spec.tty},
                     {"stdin_open", spec.tty || spec.stdin_open}},
                    {}};
  }
  auto job = std::make_shared<Job>();
  job->project = t.path[2];
  std::string service, container;
  int index = 1, cols = 0, rows = 0;
  bool want_stdin = true, from_start = false;
  try {
    service = body.value("service", "");
    container = body.value("container", "");
    index = body.value("index", 1);
    want_stdin = body.value("stdin", true);
    from_start = body.value("from_start", false);
    job->close_stdin = body.value("close_stdin", false);
    if (body.contains("size")) {
      cols = body["size"].value("cols", 0);
      rows = body["size"].value("rows", 0);
    }
  } catch (const std::exception& e) {
    co_return error_reply(400, std::string("bad request: ") + e.what());
  }
  if (service.empty()) co_return error_reply(400, "attach needs a service");
  if (req.upgrade != kAttachUpgrade)
    co_return error_reply(400, "attach streams over an upgraded connection: send Connection: "
                               "Upgrade and Upgrade: " + std::string(kAttachUpgrade));
  auto target = d.exec_target(job->project, service, index, container);
  if (!target) co_return error_reply(409, target.error().wrap("attach").message);
  job->container = target->name;
  const auto& spec = target->runtime->spec;
  job->tty = spec.tty;
  job->pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, target->pid, 0)));
  // Checked after opening: the pidfd is of the container's init, not of a reused PID.
  if (!job->pidfd || engine::process_start_time(target->pid) != target->start_time)
    co_return error_reply(409, "attach: container " + target->name + " is not running");
  if (want_stdin && (spec.tty || spec.stdin_open)) {
    auto input = take_input(job->pidfd.get(), spec.tty);
    // The init answers "started" on fd 3 (its control socket) and only then closes it and
    // moves the terminal there (init.c): an attach right after the start (`run -t`) can fall
    // between the two and find the socket or nothing. Asked again for a while (2 s).
    // A container that has already ended (`run --rm app true`) has no stdin to wait for: its
    // output is still followed below, so `run` gets it without the wait.
    auto ended = [&job] {
      pollfd gone{job->pidfd.get(), POLLIN, 0};  // a pidfd is readable once its process ended
      return ::poll(&gone, 1, 0) == 1;
    };
    asio::steady_timer pause(co_await asio::this_coro::executor);
    for (int i = 0; !input && i < 200 && !ended(); i++) {
      pause.expires_after(std::chrono::milliseconds(10));
      co_await pause.async_wait(reconciler::no_throw);
      input = take_input(job->pidfd.get(), spec.tty);
    }
    if (input)
      job->input = std::move(*input);
    else if (!ended())
      co_return error_reply(500, input.error().wrap("attach " + target->name).message);
    if (spec.tty && cols > 0 && rows > 0 && cols <= 0xffff && rows <= 0xffff) {
      winsize ws{};
      ws.ws_col = static_cast<unsigned short>(cols);
      ws.ws_row = static_cast<unsigned short>(rows);
      (void)::ioctl(job->input.get(), TIOCSWINSZ, &ws);
    }
  }
  // FROM_START: `run`'s own container, whose first lines may precede this attach.
  auto follower = engine::LogFollower::open(d.controller().container_dir(target->name),
                                            from_start, /*partials=*/true);
  if (!follower) co_return error_reply(500, follower.error().wrap("attach").message);
  job->follower.emplace(std::move(*follower));
  log::get("api")->info("attach container={} stdin={} tty={}", target->name, bool(job->input),
                        job->tty);
  Reply reply{101, {}, {}};
  reply.takeover = [&d, job](int fd, std::string after) {
    return run(d, job, fd, std::move(after));
  };
  co_return reply;
}

}  // namespace stack::api
