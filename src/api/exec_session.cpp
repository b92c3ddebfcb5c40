// See exec_session.h. The command is the engine's spawn, as health probes are: it enters the
// container's namespaces and cgroups with the service's capabilities, no_new_privs and
// seccomp filter (never more than the service has), as the requested user. Each direction is
// its own coroutine on the loop, and each waits for the other end before reading more (a
// client that stops reading stops the command's output, not the daemon's memory).
#include "api/exec_session.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <optional>

#include "api/exec_stream.h"
#include "common/log.h"
#include "engine/container.h"
#include "reconciler/daemon.h"

namespace stack::api {

namespace asio = boost::asio;
using asio::local::stream_protocol;
using nlohmann::json;
using reconciler::awaitable;
using reconciler::no_throw;
using Descriptor = asio::posix::stream_descriptor;

// A started command: the exec helper (its pid and pidfd: its exit status is the command's) and
// the daemon's ends of the command's stdio.
struct ExecSession {
  std::string container;
  engine::ExecProcess helper;
  bool tty = false;
  UniqueFd input;   // the pty master, or the stdin pipe; empty: stdin is /dev/null
  UniqueFd output;  // the pty master (a second descriptor), or the stdout pipe
  UniqueFd errors;  // the stderr pipe; empty with a tty
};

namespace {

// Caps the output forwarded after the command exited (from descendants still writing).
constexpr size_t kMaxDrain = 4 << 20;

Result<std::vector<std::string>> strings(const json& body, const char* key) {
  std::vector<std::string> out;
  if (!body.contains(key)) return out;
  const auto& v = body[key];
  if (!v.is_array()) return fail(std::string(key) + " must be a list of strings");
  for (const auto& s : v) {
    if (!s.is_string()) return fail(std::string(key) + " must be a list of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

// KEY=VALUE over the service's environment: a key set twice would leave getenv(3) the first.
void set_env(std::vector<std::string>& env, const std::string& entry) {
  auto key = entry.substr(0, entry.find('=') + 1);
  for (auto& e : env)
    if (e.rfind(key, 0) == 0) {
      e = entry;
      return;
    }
  env.push_back(entry);
}

// The host uid of container uid UID (a user-namespaced container maps it).
uid_t host_uid(const engine::ContainerSpec& spec, uid_t uid) {
  if (spec.userns && uid < spec.userns->count) return spec.userns->uid_base + uid;
  return uid;
}

Result<void> nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return fail_errno("fcntl");
  return {};
}

struct Pipe {
  UniqueFd read, write;
};
Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_errno("pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

awaitable<void> reap_detached(std::shared_ptr<UniqueFd> pidfd, std::string container) {
  int status = co_await reconciler::wait_pidfd(pidfd->get());
  log::get("api")->debug("detached exec ended container={} status={}", container, status);
}

}  // namespace

awaitable<Reply> exec_reply(reconciler::Daemon& d, const std::string& project, const json& body,
                            const Request& request) {
  std::string service = body.value("service", "");
  int index = body.value("index", 1);
  auto command = strings(body, "command");
  auto env = strings(body, "env");
  std::string user = body.value("user", ""), workdir = body.value("workdir", "");
  bool tty = body.value("tty", false), interactive = body.value("interactive", false),
       detach = body.value("detach", false);
  if (!command) co_return error_reply(400, command.error().message);
  if (!env) co_return error_reply(400, env.error().message);
  if (service.empty()) co_return error_reply(400, "exec needs a service");
  if (command->empty()) co_return error_reply(400, "exec needs a command");
  for (const auto& e : *env)
    if (e.find('=') == std::string::npos || e.front() == '=')
      co_return error_reply(400, "env entries are KEY=VALUE, got \"" + e + "\"");
  if (!workdir.empty() && workdir.front() != '/')
    co_return error_reply(400, "the working directory must be absolute, got \"" + workdir + "\"");
  if (!detach && request.upgrade != exec::kUpgrade)
    co_return error_reply(400,
                          "exec streams over an upgraded connection: send Connection: Upgrade "
                          "and Upgrade: " +
                              std::string(exec::kUpgrade) + " (or detach)");

  auto target = d.exec_target(project, service, index);
  if (!target) co_return error_reply(409, target.error().message);
  const auto& rt = target->runtime;
  engine::ProcessSpec proc = rt->spec.process;
  proc.argv = *command;
  for (const auto& e : *env) set_env(proc.env, e);
  if (!workdir.empty()) proc.cwd = workdir;
  // `exec --privileged`, as Docker's: every capability and no seccomp filter, still inside the
  // container's namespaces, cgroup (its device rules) and user mapping. Nothing more than a
  // service with `privileged: true` gets, which anyone who may call the API can run already.
  if (body.value("privileged", false)) {
    proc.capabilities = engine::all_capabilities();
    proc.seccomp = {engine::SeccompSpec::Mode::kUnconfined, "", 0};
  }
  if (!user.empty())
    if (auto r = engine::resolve_user(user, rt->spec.layers, proc); !r)
      co_return error_reply(400, r.error().wrap("exec in " + target->name).message, 126);
  engine::ContainerProcess cp{target->pid, target->start_time, 0};

  auto session = std::make_shared<ExecSession>();
  session->container = target->name;
  session->tty = tty && !detach;
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) co_return error_reply(500, "open /dev/null: " + std::string(strerror(errno)));
  engine::Stdio stdio{devnull.get(), devnull.get(), devnull.get(), false};
  UniqueFd child_in, child_out, child_err;  // the command's ends, closed once it has them
  if (session->tty) {
    auto pty = engine::open_pty(cp, host_uid(rt->spec, proc.uid));
    if (!pty) co_return error_reply(500, pty.error().wrap("exec in " + target->name).message);
    if (body.contains("size")) {
      const auto& size = body["size"];
      int cols = size.value("cols", 0), rows = size.value("rows", 0);
      if (cols > 0 && rows > 0 && cols <= 0xffff && rows <= 0xffff)
        (void)engine::resize_pty(pty->master.get(), static_cast<uint16_t>(cols),
                                 static_cast<uint16_t>(rows));
    }
    session->input = UniqueFd(::fcntl(pty->master.get(), F_DUPFD_CLOEXEC, 3));
    if (!interactive) session->input.reset();
    session->output = std::move(pty->master);
    child_in = std::move(pty->slave);
    stdio = {child_in.get(), child_in.get(), child_in.get(), true};
  } else if (!detach) {
    auto in = make_pipe(), out = make_pipe(), err = make_pipe();
    if (!in || !out || !err) co_return error_reply(500, "exec: cannot make pipes");
    if (interactive) {
      session->input = std::move(in->write);
      child_in = std::move(in->read);
    }
    session->output = std::move(out->read);
    child_out = std::move(out->write);
    session->errors = std::move(err->read);
    child_err = std::move(err->write);
    stdio = {child_in ? child_in.get() : devnull.get(), child_out.get(), child_err.get(), false};
  }
  for (int fd : {session->input.get(), session->output.get(), session->errors.get()})
    if (fd >= 0)
      if (auto r = nonblocking(fd); !r) co_return error_reply(500, r.error().message);

  auto helper = d.controller().engine().spawn(cp, target->cgroup, proc, stdio);
  if (!helper)  // could not start: shells say 126 for a command that cannot be invoked
    co_return error_reply(400, helper.error().wrap("exec in " + target->name).message, 126);
  log::get("api")->info("exec container={} command={} tty={} detach={}", target->name,
                        proc.argv.front(), session->tty, detach);
  if (detach) {
    auto pidfd = std::make_shared<UniqueFd>(std::move(helper->pidfd));
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, reap_detached(pidfd, target->name), asio::detached);
    co_return Reply{200, {{"ok", true}, {"container", target->name}}, {}, {}};
  }
  session->helper = std::move(*helper);
  co_return Reply{101, {}, {}, session};
}

namespace {

// The session's shared state: its coroutines hold it, as any of them may outlive the others.
struct Pump {
  Pump(stream_protocol::socket s, std::shared_ptr<ExecSession> e)
      : sock(std::move(s)), session(std::move(e)), changed(sock.get_executor()) {}
  stream_protocol::socket sock;
  std::shared_ptr<ExecSession> session;
  std::optional<Descriptor> input, output, errors;
  reconciler::Notifier changed;  // any of the flags below changed
  bool writing = false;          // a frame is being written to the socket
  bool client_gone = false;      // the client closed, reset or broke the protocol
  bool draining = false;         // the command exited: readers stop, output is drained
  bool exited = false;
  int status = 0;   // the helper's wait status
  int readers = 0;  // output readers still running
};

void close_descriptor(std::optional<Descriptor>& d) {
  boost::system::error_code ignored;
  if (d && d->is_open()) d->close(ignored);
}

// One frame to the client, after the frame before it: frames never interleave.
awaitable<bool> send_frame(std::shared_ptr<Pump> p, std::string frame) {
  while (p->writing && !p->client_gone) co_await p->changed.wait();
  if (p->client_gone) co_return false;
  p->writing = true;
  auto [ec, n] = co_await asio::async_write(p->sock, asio::buffer(frame), no_throw);
  p->writing = false;
  if (ec) p->client_gone = true;
  p->changed.notify();
  co_return !ec;
}

// The command's stdout (or the terminal) or stderr, as frames of TYPE, until it ends (EOF; EIO
// for a pty master once no slave is open), the command exited, or the client is gone.
awaitable<void> read_output(std::shared_ptr<Pump> p, Descriptor* d, exec::Type type) {
  std::vector<char> buf(exec::kChunk);
  while (!p->draining && !p->client_gone) {
    auto [ec, n] = co_await d->async_read_some(asio::buffer(buf), no_throw);
    if (n > 0) {
      std::string frame = exec::encode(type, std::string_view(buf.data(), n));
      if (!co_await send_frame(p, std::move(frame))) break;
    }
    if (ec) break;
  }
  p->readers--;
  p->changed.notify();
}

// Reads what is left in D without waiting (the command has exited) and sends it.
awaitable<void> drain(std::shared_ptr<Pump> p, Descriptor* d, exec::Type type) {
  std::vector<char> buf(exec::kChunk);
  size_t total = 0;
  while (d->is_open() && total < kMaxDrain) {
    ssize_t n = ::read(d->native_handle(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: nothing more now; 0: EOF; EIO: the terminal hung up
    total += static_cast<size_t>(n);
    std::string frame = exec::encode(type, std::string_view(buf.data(), static_cast<size_t>(n)));
    if (!co_await send_frame(p, std::move(frame))) break;
  }
}

// The client's frames: stdin to the command, resizes to its terminal.
awaitable<void> read_client(std::shared_ptr<Pump> p, std::string after) {
  exec::FrameReader frames;
  frames.feed(after);
  std::vector<char> buf(exec::kChunk + 5);
  for (;;) {
    for (;;) {
      auto f = frames.next();
      if (!f) {
        log::get("api")->warn("exec client dropped container={}: {}", p->session->container,
                              f.error().message);
        p->client_gone = true;
        break;
      }
      if (!*f) break;
      exec::Frame& frame = **f;
      if (frame.type == exec::Type::stdin_data) {
        if (p->input && p->input->is_open()) {
          auto [ec, n] =
              co_await asio::async_write(*p->input, asio::buffer(frame.payload), no_throw);
          if (ec) close_descriptor(p->input);  // the command closed its stdin
        }
      } else if (frame.type == exec::Type::stdin_eof) {
        if (!p->session->tty) close_descriptor(p->input);  // a terminal has no end of input
      } else if (frame.type == exec::Type::resize) {
        auto size = exec::decode_resize(frame.payload);
        if (size && p->session->tty && p->output && p->output->is_open())
          (void)engine::resize_pty(p->output->native_handle(), size->first, size->second);
      } else {
        log::get("api")->warn("exec client dropped container={}: frame type {} is the daemon's",
                              p->session->container, static_cast<int>(frame.type));
        p->client_gone = true;
      }
      if (p->client_gone) break;
    }
    if (p->client_gone || p->exited) break;
    auto [ec, n] = co_await p->sock.async_read_some(asio::buffer(buf), no_throw);
    if (ec) {
      if (!p->exited) p->client_gone = true;
      break;
    }
    frames.feed(std::string_view(buf.data(), n));
  }
  p->changed.notify();
}

awaitable<void> wait_exit(std::shared_ptr<Pump> p) {
  p->status = co_await reconciler::wait_pidfd(p->session->helper.pidfd.get());
  p->exited = true;
  p->changed.notify();
}

int exit_code(int status) {
  if (status < 0) return 255;  // not ours to reap: cannot happen for the helper we spawned
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (status & 0x7f);
}

}  // namespace

awaitable<void> run_exec(std::shared_ptr<ExecSession> session, stream_protocol::socket socket,
                         std::string after) {
  auto ex = socket.get_executor();
  auto p = std::make_shared<Pump>(std::move(socket), session);
  if (session->input) p->input.emplace(ex, session->input.release());
  if (session->output) p->output.emplace(ex, session->output.release());
  if (session->errors) p->errors.emplace(ex, session->errors.release());
  asio::co_spawn(ex, wait_exit(p), asio::detached);

  std::string upgraded = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " +
                         std::string(exec::kUpgrade) + "\r\n\r\n";
  bool sent = co_await send_frame(p, std::move(upgraded));
  if (sent) {
    if (p->output) {
      p->readers++;
      asio::co_spawn(ex, read_output(p, &*p->output, exec::Type::stdout_data), asio::detached);
    }
    if (p->errors) {
      p->readers++;
      asio::co_spawn(ex, read_output(p, &*p->errors, exec::Type::stderr_data), asio::detached);
    }
    asio::co_spawn(ex, read_client(p, std::move(after)), asio::detached);
  }
  while (!p->exited && !p->client_gone) co_await p->changed.wait();

  if (!p->exited) {
    // The client left first: the command loses its stdin, its output breaks, its terminal
    // hangs up (SIGHUP to its session); the helper is still reaped when it ends.
    log::get("api")->info("exec client gone container={}: closing the command's stdio",
                          session->container);
    close_descriptor(p->input);
    close_descriptor(p->output);
    close_descriptor(p->errors);
    boost::system::error_code ignored;
    p->sock.cancel(ignored);  // a frame stuck on a client that neither reads nor closes
    while (!p->exited || p->readers > 0) co_await p->changed.wait();
  } else {
    // What the command wrote before it ended is in the pipe or the terminal: it all goes out
    // before the exit code. Readers stop first, so each stream stays in order.
    p->draining = true;
    boost::system::error_code ignored;
    if (p->output) p->output->cancel(ignored);
    if (p->errors) p->errors->cancel(ignored);
    while (p->readers > 0) co_await p->changed.wait();
    if (p->output) co_await drain(p, &*p->output, exec::Type::stdout_data);
    if (p->errors) co_await drain(p, &*p->errors, exec::Type::stderr_data);
    int code = exit_code(p->status);
    std::string frame = exec::encode_exit(code);
    co_await send_frame(p, std::move(frame));
    log::get("api")->debug("exec ended container={} code={}", session->container, code);
    close_descriptor(p->input);
    close_descriptor(p->output);
    close_descriptor(p->errors);
  }
  boost::system::error_code ignored;
  p->sock.shutdown(stream_protocol::socket::shutdown_both, ignored);
  p->sock.close(ignored);
}

}  // namespace stack::api
