// `stack attach [--index N] [--no-stdin] [--detach-keys KEYS] [--sig-proxy] SERVICE`, as docker
// compose attach: this terminal joins the service's (tty: true) or its stdin (stdin_open: true)
// and output, through the daemon (POST /v1/projects/P/attach, src/api/attach_routes.h). The
// local terminal is raw for a tty service and its size follows SIGWINCH; the detach keys (Ctrl-P
// Ctrl-Q by default) leave the service running. Without a tty, the signals this process gets
// go to the container (--sig-proxy, POST /v1/projects/P/kill). Ends with the service's exit code.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "api/exec_stream.h"
#include "cli/cli.h"
#include "cli/terminal.h"

namespace stack::cli {

namespace {

using nlohmann::json;
namespace frames = api::exec;

constexpr std::string_view kUpgrade = "stack-attach";  // src/api/attach_routes.h

struct AttachFlags {
  int index = 1;
  bool no_stdin = false;
  bool sig_proxy = true;
  std::string detach_keys = "ctrl-p,ctrl-q";
  std::string service;
};

// "ctrl-p,ctrl-q" -> "\x10\x11", as docker reads --detach-keys: ctrl-<letter>, ctrl-@, ctrl-[,
// ctrl-\, ctrl-], ctrl-^, ctrl-_, or one character.
std::optional<std::string> parse_keys(const std::string& spec) {
  std::string out;
  size_t i = 0;
  while (i <= spec.size()) {
    size_t comma = spec.find(',', i);
    if (comma == std::string::npos) comma = spec.size();
    std::string key = spec.substr(i, comma - i);
    if (key.size() == 1) {
      out += key;
    } else if (key.size() == 6 && key.rfind("ctrl-", 0) == 0) {
      char c = key[5];
      if (std::isalpha(static_cast<unsigned char>(c)))
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)) - 'a' + 1);
      else if (c == '@') out += '\0';
      else if (c >= '[' && c <= '_') out += static_cast<char>(c - '@');
      else return std::nullopt;
    } else {
      return std::nullopt;
    }
    i = comma + 1;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// Where a signal this process gets goes (--sig-proxy): the container it is attached to.
struct Proxy {
  std::string project, container;
  int fd = -1;  // proxied_signals(), -1: not proxying
};

void forward(const Proxy& proxy) {
  char sigs[16];
  ssize_t n;
  while ((n = ::read(proxy.fd, sigs, sizeof sigs)) > 0)
    for (ssize_t i = 0; i < n; i++) {
      json body = {{"containers", {proxy.container}},
                   {"signal", std::to_string(static_cast<int>(sigs[i]))}};
      auto r = daemon_client().call("POST", "/v1/projects/" + url_encode(proxy.project) + "/kill",
                                       body.dump());
      if (!r || r->status != 200)
        std::fprintf(stderr, "stack: attach: signal %d not passed on to %s\n", sigs[i],
                     proxy.container.c_str());
    }
}

int pump(int sock, std::string pending, bool tty, bool send_stdin, const std::string& keys,
         const Proxy& proxy) {
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, nullptr);
  std::optional<RawTerminal> raw = tty && send_stdin ? RawTerminal::enter(0) : std::nullopt;
  int winch = tty ? window_changes() : -1;
  ::fcntl(sock, F_SETFL, ::fcntl(sock, F_GETFL) | O_NONBLOCK);
  frames::FrameReader reader;
  reader.feed(pending);
  std::string out, held;  // held: typed bytes that may start the detach keys
  bool stdin_open = send_stdin;
  std::vector<char> buf(frames::kChunk);
  for (;;) {
    for (;;) {
      auto f = reader.next();
      if (!f) {
        raw.reset();
        std::fprintf(stderr, "stack: %s\n", f.error().message.c_str());
        return 1;
      }
      if (!*f) break;
      if ((*f)->type == frames::Type::stdout_data) {
        if (!write_all(1, (*f)->payload)) return 1;
      } else if ((*f)->type == frames::Type::stderr_data) {
        if (!write_all(2, (*f)->payload)) return 1;
      } else if ((*f)->type == frames::Type::exit) {
        auto code = frames::decode_exit((*f)->payload);
        return code ? *code : 1;
      } else {
        raw.reset();
        std::fprintf(stderr, "stack: attach: %s\n", (*f)->payload.c_str());
        return 1;
      }
    }
    pollfd fds[4] = {{sock, static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)), 0},
                     {stdin_open && out.size() < (256 << 10) ? 0 : -1, POLLIN, 0},
                     {winch, POLLIN, 0},
                     {proxy.fd, POLLIN, 0}};
    if (::poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (fds[3].revents & POLLIN) forward(proxy);
    if (fds[2].revents & POLLIN) {
      char drain[64];
      while (::read(winch, drain, sizeof drain) > 0) {
      }
      if (auto size = terminal_size(0)) out += frames::encode_resize(size->first, size->second);
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(0, buf.data(), buf.size());
      if (n > 0) {
        std::string data;
        for (ssize_t i = 0; i < n; i++) {  // the detach keys are never sent
          held += buf[static_cast<size_t>(i)];
          if (keys.compare(0, held.size(), held) != 0) {
            data += held;
            held.clear();
          } else if (held.size() == keys.size()) {
            raw.reset();
            std::fprintf(stderr, "\nstack: detached (the service goes on)\n");
            return 0;
          }
        }
        if (!data.empty()) out += frames::encode(frames::Type::stdin_data, data);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        stdin_open = false;
        out += frames::encode(frames::Type::stdin_eof);
      }
    }
    if (!out.empty() && (fds[0].revents & POLLOUT)) {
      ssize_t n = ::send(sock, out.data(), out.size(), MSG_NOSIGNAL);
      if (n > 0) out.erase(0, static_cast<size_t>(n));
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(sock, buf.data(), buf.size());
      if (n > 0) {
        reader.feed(std::string_view(buf.data(), static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        raw.reset();
        std::fprintf(stderr, "stack: attach: the daemon closed the stream (did it stop?)\n");
        return 1;
      }
    }
  }
}

// CONTAINER: `run`'s (its output from its first line), instead of the index. A refusal of
// RUN_CONTAINER (it no longer runs) is nullopt, said nothing of.
std::optional<int> attach(const std::string& project, const AttachFlags& f,
                          const std::string& run_container = "") {
  auto keys = parse_keys(f.detach_keys);
  if (!keys) {
    std::fprintf(stderr, "stack: attach: --detach-keys \"%s\": give ctrl-<key> or characters, "
                 "comma-separated\n", f.detach_keys.c_str());
    return 2;
  }
  std::string path = "/v1/projects/" + url_encode(project) + "/attach";
  std::string target = "?service=" + url_encode(f.service) + "&index=" + std::to_string(f.index);
  if (!run_container.empty()) target += "&container=" + url_encode(run_container);
  auto got = value_or_exit(daemon_client().call("GET", path + target));
  if (got.status >= 400 && !run_container.empty()) return std::nullopt;
  if (got.status >= 400) call("GET", path + target);  // says why, and exits
  auto info = json::parse(got.body, nullptr, false);
  bool tty = info.is_object() && info.value("tty", false);
  bool send_stdin = !f.no_stdin && info.is_object() && info.value("stdin_open", false);
  json body = {{"service", f.service}, {"index", f.index}, {"stdin", send_stdin}};
  if (!run_container.empty()) {
    body["container"] = run_container;
    body["from_start"] = true;
    body["close_stdin"] = true;  // `run`: the end of this stdin ends the service's
  }
  if (tty)
    if (auto size = terminal_size(0))
      body["size"] = {{"cols", size->first}, {"rows", size->second}};
  api::Response refused;
  auto up = daemon_client().upgrade("POST", path, body.dump(), kUpgrade, refused);
  if (!up) return report(up.error());
  if (!up->socket) {
    if (!run_container.empty() && refused.status == 409) return std::nullopt;
    auto j = json::parse(refused.body, nullptr, false);
    std::string msg = j.is_object() && j.contains("error") && j["error"].is_string()
                          ? j["error"].get<std::string>()
                          : "the daemon answered " + std::to_string(refused.status);
    std::fprintf(stderr, "stack: %s\n", msg.c_str());
    return 1;
  }
  // As docker: signals are passed on without a tty only (with one, the terminal's keys are
  // bytes for the container's own line discipline).
  Proxy proxy{project, info.value("container", ""), -1};
  if (f.sig_proxy && !tty && !proxy.container.empty()) proxy.fd = proxied_signals();
  return pump(up->socket.get(), std::move(up->pending), tty, send_stdin, *keys, proxy);
}

}  // namespace

void add_attach_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "attach", "Attach this terminal to a service's terminal (tty) or stdin and output");
  static AttachFlags flags;
  cmd->add_option("--index", flags.index, "Which replica (default 1)");
  cmd->add_flag("--no-stdin", flags.no_stdin, "Do not send this terminal's input");
  cmd->add_option("--detach-keys", flags.detach_keys,
                  "Keys that detach, leaving the service running (default ctrl-p,ctrl-q)");
  cmd->add_flag("--sig-proxy", flags.sig_proxy,
                "Pass the signals this command gets (Ctrl-C, SIGTERM, ...) on to the container's "
                "main process (default true; --sig-proxy=false: Ctrl-C ends attach, the service "
                "goes on); without a tty only, as docker");
  cmd->add_option("service", flags.service, "The service")->required();
  cmd->footer(
      "Output is the service's from now on (its logs hold what came before). A service\n"
      "without tty or stdin_open gets no input. With a tty, Ctrl-C is the container's key.");
  cmd->callback([] {
    auto project = value_or_exit(project_name());
    throw ExitCode{attach(project, flags).value_or(1)};
  });
}

std::optional<int> attach_run(const std::string& project, const std::string& service,
                              const std::string& container, bool sig_proxy) {
  AttachFlags f;
  f.service = service;
  f.sig_proxy = sig_proxy;
  return attach(project, f, container);
}

}  // namespace stack::cli
