// process.terminal and `exec --tty` with --console-socket: the terminal's master arrives on the
// caller's unix socket (SCM_RIGHTS, as conmon receives it), the process sees a terminal of the
// container's own devpts with the asked window size. Run against crun too where installed.
// Root; containers, cgroups and sockets named stack-rt-<pid>-..., all removed pass or fail.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "common/unique_fd.h"
#include "runtime_support.h"

using namespace stack::test::rt;
using stack::UniqueFd;

namespace {

// A listening unix stream socket, as conmon's console socket.
struct ConsoleSocket {
  fs::path path;
  UniqueFd fd;
  explicit ConsoleSocket(const fs::path& p) : path(p) {
    fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, p.c_str(), sizeof a.sun_path - 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd.get(), 4) == 0);
  }
  // The descriptor the runtime sent (-1 when none came within 10 s).
  UniqueFd receive() {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return UniqueFd();
    UniqueFd conn(::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    char data[256];
    iovec iov{data, sizeof data};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC) < 0) return UniqueFd();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) return UniqueFd();
    int out = -1;
    std::memcpy(&out, CMSG_DATA(c), sizeof out);
    return UniqueFd(out);
  }
};

// What the terminal's master reads until every slave is closed (EIO), at most 20 s.
std::string drain(int master) {
  std::string out;
  char buf[4096];
  for (auto until = std::chrono::steady_clock::now() + 20s;
       std::chrono::steady_clock::now() < until;) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

TEST_CASE("runtime process.terminal sends the pty master to the console socket") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("tty");
    json c = config({"sh", "-c", "tty; stty size; echo done"}, b.shared, id);
    c["process"]["terminal"] = true;
    c["process"]["consoleSize"] = {{"height", 31}, {"width", 97}};
    b.write(c);
    b.made.emplace_back(&rt, id);
    ConsoleSocket sock(b.dir / "console.sock");
    auto cr = rt({"create", "--bundle", b.path(), "--console-socket", sock.path.string(), id});
    REQUIRE_MESSAGE(cr.code == 0, cr.err);
    UniqueFd master = sock.receive();
    REQUIRE(master);
    REQUIRE(rt({"start", id}).code == 0);
    std::string out = drain(master.get());
    CHECK(out.find("/dev/pts/0\r\n") != std::string::npos);
    CHECK(out.find("31 97\r\n") != std::string::npos);
    CHECK(out.find("done\r\n") != std::string::npos);
    CHECK(wait_status(rt, id, "stopped"));
    CHECK(rt({"delete", id}).code == 0);

    // A terminal without a socket is refused, with nothing left.
    std::string id2 = unique("tty-nosock");
    c["linux"]["cgroupsPath"] = "/" + id2;
    b.write(c);
    b.made.emplace_back(&rt, id2);
    CHECK(rt({"create", "--bundle", b.path(), id2}).code != 0);
    CHECK(status(rt, id2) == "absent");
    CHECK_FALSE(cgroup_exists(id2));
  }
}

TEST_CASE("runtime exec --tty sends the pty master to the console socket") {
  STACK_REQUIRE_ROOT();
  TempDir roots("stack-rt-roots");
  for (const auto& rt : runtimes(roots.path())) {
    CAPTURE(rt.name);
    Bundle b;
    std::string id = unique("exectty");
    b.write(config(kWaitForGo, b.shared, id));
    b.made.emplace_back(&rt, id);
    REQUIRE(rt({"create", "--bundle", b.path(), id}).code == 0);
    REQUIRE(rt({"start", id}).code == 0);
    REQUIRE(wait_status(rt, id, "running"));
    ConsoleSocket sock(b.dir / "exec.sock");
    auto e = rt({"exec", "--tty", "--console-socket", sock.path.string(), id, "sh", "-c",
                 "tty; exit 4"});
    CHECK_MESSAGE(e.code == 4, e.err);
    UniqueFd master = sock.receive();
    REQUIRE(master);
    CHECK(drain(master.get()).find("/dev/pts/") != std::string::npos);
    stack::test::write_text(b.shared / "go", "");
    CHECK(wait_status(rt, id, "stopped"));
  }
}
