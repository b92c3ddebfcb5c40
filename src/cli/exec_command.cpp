// `stack exec [-T] [-d] [-e K=V] [-u USER] [-w DIR] [--index N] SERVICE CMD...`: the daemon
// runs CMD in the container (so members of group stack can exec, not only root); this end
// copies stdin to it and its output here, over the upgraded API connection
// (src/api/exec_stream.h). With a terminal (the default when stdin is one, as compose does)
// the local terminal is raw and its size follows SIGWINCH. The exit code is CMD's.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "api/exec_stream.h"
#include "cli/cli.h"
#include "cli/terminal.h"

namespace stack::cli {

namespace {

using nlohmann::json;

struct ExecFlags {
  bool no_tty = false;
  bool detach = false;
  bool privileged = false;  // every capability, no seccomp filter
  int index = 1;
  std::vector<std::string> env;
  std::string user, workdir, service;
};

// Frames the client has to send, sent as the socket takes them: stdin is read only while
// little is queued, so a command that does not read its stdin never blocks its output here.
constexpr size_t kMaxQueued = 256 * 1024;

// Runs the session on the upgraded socket until the exit frame; returns the exit code.
int pump(int sock, std::string pending, bool tty) {
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, nullptr);  // a closed stdout or socket is an error code here
  std::optional<RawTerminal> raw = tty ? RawTerminal::enter(0) : std::nullopt;
  int winch = tty ? window_changes() : -1;
  int flags = ::fcntl(sock, F_GETFL);
  ::fcntl(sock, F_SETFL, flags | O_NONBLOCK);
  api::exec::FrameReader frames;
  frames.feed(pending);
  std::string out;  // queued for the socket
  bool stdin_open = true;
  std::vector<char> buf(api::exec::kChunk);
  for (;;) {
    for (;;) {
      auto f = frames.next();
      if (!f) {
        std::fprintf(stderr, "stack: %s\n", f.error().message.c_str());
        return 1;
      }
      if (!*f) break;
      const auto& frame = **f;
      switch (frame.type) {
        case api::exec::Type::stdout_data:
          if (!write_all(1, frame.payload)) return 1;
          break;
        case api::exec::Type::stderr_data:
          if (!write_all(2, frame.payload)) return 1;
          break;
        case api::exec::Type::exit: {
          auto code = api::exec::decode_exit(frame.payload);
          return code ? *code : 1;
        }
        case api::exec::Type::error:
          raw.reset();
          std::fprintf(stderr, "stack: exec: %s\n", frame.payload.c_str());
          return 1;
        default:
          std::fprintf(stderr, "stack: exec: the daemon sent a frame of type %d\n",
                       static_cast<int>(frame.type));
          return 1;
      }
    }
    pollfd fds[3] = {{sock, static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)), 0},
                     {stdin_open && out.size() < kMaxQueued ? 0 : -1, POLLIN, 0},
                     {winch, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      std::perror("stack: poll");
      return 1;
    }
    if (fds[2].revents & POLLIN) {
      char drain[64];
      while (::read(winch, drain, sizeof drain) > 0) {
      }
      if (auto size = terminal_size(0)) out += api::exec::encode_resize(size->first, size->second);
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
      ssize_t n = (fds[1].revents & POLLNVAL) ? 0 : ::read(0, buf.data(), buf.size());
      if (n > 0) {
        out += api::exec::encode(api::exec::Type::stdin_data,
                                 std::string_view(buf.data(), static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {  // EOF (EIO: terminal gone)
        stdin_open = false;
        out += api::exec::encode(api::exec::Type::stdin_eof);
      }
    }
    if (!out.empty() && (fds[0].revents & POLLOUT)) {
      ssize_t n = ::send(sock, out.data(), out.size(), MSG_NOSIGNAL);
      if (n > 0) out.erase(0, static_cast<size_t>(n));
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(sock, buf.data(), buf.size());
      if (n > 0) {
        frames.feed(std::string_view(buf.data(), static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        raw.reset();
        std::fprintf(stderr,
                     "stack: exec: the daemon closed the stream before the command's "
                     "exit code (did the daemon stop?)\n");
        return 1;
      }
    }
  }
}

int exec_in(const std::string& project, const ExecFlags& f,
            const std::vector<std::string>& command) {
  bool tty = !f.no_tty && !f.detach && ::isatty(0) == 1;
  json env = json::array();
  for (const auto& e : f.env) {
    if (e.find('=') != std::string::npos) {
      env.push_back(e);
    } else if (const char* v = std::getenv(e.c_str())) {  // `-e KEY`: this shell's value
      env.push_back(e + "=" + v);
    }
  }
  json body = {{"service", f.service}, {"index", f.index},         {"command", command},
               {"env", env},           {"user", f.user},           {"workdir", f.workdir},
               {"tty", tty},           {"interactive", !f.detach}, {"detach", f.detach}};
  if (f.privileged) body["privileged"] = true;
  if (tty)
    if (auto size = terminal_size(0))
      body["size"] = {{"cols", size->first}, {"rows", size->second}};
  std::string path = "/v1/projects/" + url_encode(project) + "/exec";
  if (f.detach) {
    call("POST", path, body.dump());
    return 0;
  }
  api::Response refused;
  auto up = daemon_client().upgrade("POST", path, body.dump(), api::exec::kUpgrade, refused);
  if (!up) return report(up.error());
  if (!up->socket) {
    auto j = json::parse(refused.body, nullptr, false);
    std::string msg = j.is_object() && j.contains("error") && j["error"].is_string()
                          ? j["error"].get<std::string>()
                          : "the daemon answered " + std::to_string(refused.status);
    std::fprintf(stderr, "stack: %s\n", msg.c_str());
    return j.is_object() ? j.value("exit_code", 1) : 1;
  }
  return pump(up->socket.get(), std::move(up->pending), tty);
}

}  // namespace

void add_exec_command(CLI::App& app) {
  auto* exec = app.add_subcommand("exec", "Run a command in a running container");
  static ExecFlags flags;
  exec->add_flag("-T,--no-TTY", flags.no_tty,
                 "Do not allocate a terminal (default: one when stdin is a terminal)");
  exec->add_flag("-d,--detach", flags.detach, "Run the command in the background");
  exec->add_option("--index", flags.index, "Which replica (default 1)");
  exec->add_flag("--privileged", flags.privileged,
                 "Give the command every capability and no seccomp filter (in the container's "
                 "namespaces, cgroup and devices)");
  exec->add_option("-e,--env", flags.env,
                   "Set an environment variable KEY=VALUE (KEY alone: "
                   "its value here); repeatable")
      ->allow_extra_args(false);
  exec->add_option("-u,--user", flags.user, "Run as this user (name or uid[:gid] of the image)");
  exec->add_option("-w,--workdir", flags.workdir, "Working directory in the container");
  exec->add_option("service", flags.service, "The service")->required();
  exec->footer(
      "Usage: stack exec [OPTIONS] SERVICE COMMAND [ARG...]\n"
      "Everything after SERVICE is the command, options included.");
  exec->callback([] {
    const auto& command = exec_command();
    if (command.empty()) throw CLI::ValidationError("exec", "needs a COMMAND after the service");
    auto project = value_or_exit(project_name());
    throw ExitCode{exec_in(project, flags, command)};
  });
}

}  // namespace stack::cli
