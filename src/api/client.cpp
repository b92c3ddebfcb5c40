// HTTP/1.1 over the daemon's Unix socket with plain syscalls (the response is read by
// http_reader), and starting the daemon when none answers: `stackd` detached in its own
// session, its log in the run root.
#include "api/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "api/http_reader.h"

namespace stack::api {

namespace {

Result<UniqueFd> connect_to(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof addr.sun_path)
    return fail("socket path too long: " + path.string(), ENAMETOOLONG);
  std::memcpy(addr.sun_path, path.c_str(), path.native().size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket");
  int r;
  do r = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  while (r != 0 && errno == EINTR);
  if (r == 0) return fd;
  int err = errno;
  if (err == ENOENT || err == ECONNREFUSED)
    return fail("no stack daemon answers on " + path.string(), err);
  if (err == EACCES || err == EPERM)
    return fail("permission denied on " + path.string() +
                    " (the daemon's socket is for root and the members of group stack)",
                err);
  return fail_errno("connect to " + path.string(), err);
}

Result<void> send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("send to the daemon");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

std::string request_text(std::string_view method, std::string_view target, std::string_view body,
                         std::string_view upgrade) {
  std::string req;
  req.reserve(160 + body.size());
  req.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: stack\r\n");
  req.append("User-Agent: stack/" STACK_VERSION "\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.append("Content-Type: application/json\r\nContent-Length: ");
    req.append(std::to_string(body.size())).append("\r\n");
  }
  if (upgrade.empty()) {
    req.append("Connection: close\r\n\r\n");
  } else {
    req.append("Connection: Upgrade\r\nUpgrade: ").append(upgrade).append("\r\n\r\n");
  }
  req.append(body);
  return req;
}

// Reads the response into READER until it is complete (or, with HEADER_ONLY, until its header
// is), calling ON_BODY after each read that added body bytes; STOP is asked every 100 ms. False
// from ON_BODY or true from STOP ends the read early: STOPPED says so.
Result<void> read_response(int fd, ResponseReader& reader, bool header_only,
                           const std::function<bool()>& on_body, const std::function<bool()>& stop,
                           bool& stopped) {
  char buf[16384];
  for (;;) {
    auto st = reader.state();
    if (st == ResponseReader::State::done || (header_only && st != ResponseReader::State::header))
      return {};
    if (st == ResponseReader::State::failed) return fail(reader.error());
    if (stop) {
      if (stop()) {
        stopped = true;
        return {};
      }
      pollfd pfd{fd, POLLIN, 0};
      int r = ::poll(&pfd, 1, 100);
      if (r < 0 && errno != EINTR) return fail_errno("poll the daemon's socket");
      if (r <= 0) continue;
    }
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read from the daemon");
    if (n == 0) {
      reader.finish();
    } else {
      reader.feed(std::string_view(buf, static_cast<size_t>(n)));
    }
    if (on_body && !reader.body().empty() && !on_body()) {
      stopped = true;
      return {};
    }
    if (n == 0 && reader.state() != ResponseReader::State::done) return fail(reader.error());
  }
}

Result<Response> exchange(const std::filesystem::path& socket, std::string_view method,
                          std::string_view target, std::string_view body) {
  auto conn = connect_to(socket);
  if (!conn) return fail(conn.error());
  UniqueFd fd = std::move(*conn);
  auto context = "daemon request " + std::string(method) + " " +
                 std::string(target.substr(0, target.find('?')));
  if (auto r = send_all(fd.get(), request_text(method, target, body, {})); !r)
    return fail(r.error().wrap(context));
  ResponseReader reader;
  bool stopped = false;
  if (auto r = read_response(fd.get(), reader, false, {}, {}, stopped); !r)
    return fail(r.error().wrap(context));
  return Response{reader.status(), std::move(reader.body())};
}

}  // namespace

Result<void> Client::ping() {
  auto r = exchange(socket_, "GET", "/v1/version", {});
  if (!r) return fail(r.error());
  if (r->status != 200)
    return fail("the daemon on " + socket_.string() + " answered " + std::to_string(r->status));
  return {};
}

Result<Response> Client::call(std::string_view method, std::string_view target,
                              std::string_view body) {
  return exchange(socket_, method, target, body);
}

Result<int> Client::stream(std::string_view method, std::string_view target, std::string_view body,
                           const std::function<bool(std::string_view)>& on_line,
                           const std::function<bool()>& stop) {
  auto fd = connect_to(socket_);
  if (!fd) return fail(fd.error());
  auto context = "daemon request " + std::string(method) + " " +
                 std::string(target.substr(0, target.find('?')));
  if (auto r = send_all(fd->get(), request_text(method, target, body, {})); !r)
    return fail(r.error().wrap(context));
  ResponseReader reader;
  // Complete lines go to ON_LINE as they arrive; an error reply's body is one JSON line too.
  auto lines = [&] {
    std::string& b = reader.body();
    size_t start = 0;
    bool more = true;
    for (size_t nl; more && (nl = b.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(b.data() + start, nl - start);
      if (!line.empty()) more = on_line(line);
    }
    b.erase(0, start);
    return more;
  };
  bool stopped = false;
  if (auto r = read_response(fd->get(), reader, false, lines, stop, stopped); !r)
    return fail(r.error().wrap(context));
  if (!stopped && !reader.body().empty()) on_line(reader.body());  // a last line without '\n'
  return reader.status();
}

Result<Upgraded> Client::upgrade(std::string_view method, std::string_view target,
                                 std::string_view body, std::string_view protocol,
                                 Response& refused) {
  auto conn = connect_to(socket_);
  if (!conn) return fail(conn.error());
  UniqueFd fd = std::move(*conn);
  auto context = "daemon request " + std::string(method) + " " +
                 std::string(target.substr(0, target.find('?')));
  if (auto r = send_all(fd.get(), request_text(method, target, body, protocol)); !r)
    return fail(r.error().wrap(context));
  ResponseReader reader;
  bool stopped = false;
  if (auto r = read_response(fd.get(), reader, true, {}, {}, stopped); !r)
    return fail(r.error().wrap(context));
  if (reader.status() == 101) return Upgraded{std::move(fd), std::move(reader.rest())};
  if (auto r = read_response(fd.get(), reader, false, {}, {}, stopped); !r)
    return fail(r.error().wrap(context));
  refused = Response{reader.status(), std::move(reader.body())};
  return Upgraded{};
}

Result<void> Client::ensure_daemon(const DaemonCommand& command) {
  if (ping()) return {};
  std::filesystem::path log = socket_.parent_path() / "daemon.log";
  std::error_code ec;
  std::filesystem::create_directories(socket_.parent_path(), ec);
  std::vector<std::string> args = {command.binary.string()};
  args.insert(args.end(), command.args.begin(), command.args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Double fork: the daemon is nobody's child here and outlives this command.
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::waitpid(pid, nullptr, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ping()) {
      std::fprintf(stderr, "stack: started the stack daemon (log: %s)\n", log.c_str());
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return fail("started the stack daemon (" + command.binary.string() +
              "), but it does not answer on " + socket_.string() + " (see " + log.string() + ")");
}

}  // namespace stack::api
