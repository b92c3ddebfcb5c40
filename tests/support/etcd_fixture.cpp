// The etcd fixture: members as child processes (their output in the temp dir), health by
// `etcdctl endpoint health`, the leader by `etcdctl endpoint status`, and teardown in the
// order RECIPES.md found safe (followers, then the leader; SIGKILL after a grace time).
#include "support/etcd_fixture.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/fixtures.h"

namespace stack::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const char* kEtcd = "/usr/bin/etcd";
const char* kEtcdctl = "/usr/bin/etcdctl";

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string tag() { return std::to_string(::getpid()); }

bool dead(const std::string& pid_text) {
  int pid = std::atoi(pid_text.c_str());
  return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH;
}

// What a killed test process left: namespaces stack-test-etcd-<pid>-<n> and bridges
// stkteb<pid> (their veths go with the namespaces). Members died with it (PDEATHSIG).
void sweep_stale() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/netns", ec)) {
    auto name = e.path().filename().string();
    const std::string prefix = "stack-test-etcd-";
    if (name.rfind(prefix, 0) != 0) continue;
    auto pid = name.substr(prefix.size(), name.find('-', prefix.size()) - prefix.size());
    if (dead(pid)) run({"/usr/sbin/ip", "netns", "del", name});
  }
  for (const auto& e : fs::directory_iterator("/sys/class/net", ec)) {
    auto name = e.path().filename().string();
    if (name.rfind("stkteb", 0) == 0 && dead(name.substr(6)))
      run({"/usr/sbin/ip", "link", "del", name});
  }
}

// Waits for PID for at most GRACE; true when it exited.
bool wait_exit(pid_t pid, std::chrono::milliseconds grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

void stop(EtcdMember& m, std::chrono::milliseconds grace) {
  if (m.pid <= 0) return;
  ::kill(m.pid, SIGTERM);
  if (!wait_exit(m.pid, grace)) {
    ::kill(m.pid, SIGKILL);
    ::waitpid(m.pid, nullptr, 0);
  }
  m.pid = -1;
}

}  // namespace

std::string etcd_missing() {
  if (::access(kEtcd, X_OK) != 0 || ::access(kEtcdctl, X_OK) != 0)
    return "needs etcd (Debian etcd-server and etcd-client: scripts/install-deps.sh)";
  return "";
}

TestPki make_test_pki(const fs::path& dir, const std::vector<std::string>& addresses) {
  TestPki p;
  auto f = [&](const char* n) { return (dir / n).string(); };
  p.ca = f("ca.pem");
  p.server_cert = f("server.pem");
  p.server_key = f("server-key.pem");
  p.client_cert = f("client.pem");
  p.client_key = f("client-key.pem");
  p.other_ca = f("other-ca.pem");
  std::string san = "subjectAltName=DNS:localhost";
  for (const auto& a : addresses) san += ",IP:" + a;
  std::ostringstream script;
  script << "set -e; cd '" << dir.string() << "'\n"
         << "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=stack-test-ca"
            " -keyout ca-key.pem -out ca.pem 2>/dev/null\n"
         << "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=stack-test-other-ca"
            " -keyout other-ca-key.pem -out other-ca.pem 2>/dev/null\n"
         << "openssl req -newkey rsa:2048 -nodes -subj /CN=stack-test-member"
            " -keyout server-key.pem -out server.csr 2>/dev/null\n"
         << "printf '%s\\nextendedKeyUsage=serverAuth,clientAuth\\n' '" << san << "' > server.ext\n"
         << "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial"
            " -days 2 -extfile server.ext -out server.pem 2>/dev/null\n"
         << "openssl req -newkey rsa:2048 -nodes -subj /CN=stack-test-node"
            " -keyout client-key.pem -out client.csr 2>/dev/null\n"
         << "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n"
         << "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial"
            " -days 2 -extfile client.ext -out client.pem 2>/dev/null\n";
  auto r = run({"/bin/sh", "-c", script.str()});
  if (r.code != 0) throw std::runtime_error("openssl: " + r.err);
  return p;
}

std::unique_ptr<EtcdCluster> EtcdCluster::single(bool tls) {
  std::unique_ptr<EtcdCluster> c(new EtcdCluster);
  c->dir_ = std::make_unique<TempDir>("stack-test-etcd");
  c->tls_ = tls;
  if (tls) c->pki_ = make_test_pki(c->dir_->path(), {"127.0.0.1"});
  int client = free_port(), peer = free_port();
  EtcdMember m;
  m.name = "m0";
  m.client_url = std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(client);
  m.peer_url = "http://127.0.0.1:" + std::to_string(peer);
  c->initial_cluster_ = "m0=" + m.peer_url;
  c->members_.push_back(m);
  c->start_member(0);
  c->healthy_ = c->wait_healthy(0, 20);
  return c;
}

std::unique_ptr<EtcdCluster> EtcdCluster::three() {
  std::unique_ptr<EtcdCluster> c(new EtcdCluster);
  sweep_stale();
  c->dir_ = std::make_unique<TempDir>("stack-test-etcd");
  const std::string t = tag();
  const std::string net = "192.168." + std::to_string(224 + ::getpid() % 16) + ".";
  c->bridge_ = "stkteb" + t;
  auto sh = [](const std::string& cmd) {
    auto r = run({"/bin/sh", "-c", cmd});
    if (r.code != 0) throw std::runtime_error(cmd + ": " + r.err);
  };
  // Everything made below is listed first, so the destructor removes it even half-way.
  sh("ip link add " + c->bridge_ + " type bridge && ip addr add " + net + "1/24 dev " +
     c->bridge_ + " && ip link set " + c->bridge_ + " up");
  std::string initial;
  for (int i = 0; i < 3; ++i) {
    EtcdMember m;
    m.name = "m" + std::to_string(i);
    m.netns = "stack-test-etcd-" + std::to_string(::getpid()) + "-" + std::to_string(i);
    std::string addr = net + std::to_string(11 + i);
    m.client_url = "http://" + addr + ":2379";
    m.peer_url = "http://" + addr + ":2380";
    c->members_.push_back(m);
    std::string link = "stkte" + t + "x" + std::to_string(i);  // at most 14 characters
    c->links_.push_back(link);
    sh("ip netns add " + m.netns);
    sh("ip link add " + link + " type veth peer name eth0 netns " + m.netns);
    sh("ip link set " + link + " master " + c->bridge_ + " up");
    sh("ip -n " + m.netns + " addr add " + addr + "/24 dev eth0 && ip -n " + m.netns +
       " link set eth0 up && ip -n " + m.netns + " link set lo up");
    initial += (i ? "," : "") + m.name + "=http://" + addr + ":2380";
  }
  c->initial_cluster_ = initial;
  for (int i = 0; i < 3; ++i) c->start_member(i);
  c->healthy_ = true;
  for (int i = 0; i < 3; ++i) c->healthy_ = c->wait_healthy(i, 30) && c->healthy_;
  return c;
}

void EtcdCluster::start_member(int i) {
  auto& m = members_[i];
  const auto& peer_url = m.peer_url;
  const auto& initial_cluster = initial_cluster_;
  const bool tls = tls_;
  auto url = m.client_url;
  std::string host_port = url.substr(url.find("://") + 3);
  std::string listen = url;
  std::vector<std::string> argv;
  if (!m.netns.empty()) argv = {"/usr/sbin/ip", "netns", "exec", m.netns};
  std::vector<std::string> etcd{kEtcd,
                                "--name", m.name,
                                "--data-dir", (dir_->path() / m.name).string(),
                                "--listen-client-urls", listen,
                                "--advertise-client-urls", url,
                                "--listen-peer-urls", peer_url,
                                "--initial-advertise-peer-urls", peer_url,
                                "--initial-cluster", initial_cluster,
                                "--initial-cluster-state", "new",
                                "--initial-cluster-token", "stack-test-" + tag()};
  if (tls) {
    for (auto a : {"--cert-file", pki_.server_cert.c_str(), "--key-file",
                   pki_.server_key.c_str(), "--trusted-ca-file", pki_.ca.c_str(),
                   "--client-cert-auth"})
      etcd.emplace_back(a);
  }
  argv.insert(argv.end(), etcd.begin(), etcd.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::string log = (dir_->path() / (m.name + ".log")).string();
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::dup2(devnull, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::setpgid(0, 0);
    // A test process killed outright takes its members along (`ip netns exec` execs etcd in
    // this same process, and the signal survives exec).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  m.pid = pid;
}

bool EtcdCluster::wait_healthy(int i, int seconds) {
  std::vector<std::string> argv{kEtcdctl, "--endpoints", members_[i].client_url,
                                "--dial-timeout", "1s", "--command-timeout", "2s"};
  if (tls_) {
    for (auto a : {"--cacert", pki_.ca.c_str(), "--cert", pki_.client_cert.c_str(), "--key",
                   pki_.client_key.c_str()})
      argv.emplace_back(a);
  }
  argv.emplace_back("endpoint");
  argv.emplace_back("health");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (run(argv, {"ETCDCTL_API=3"}).code == 0) return true;
    if (members_[i].pid > 0 && ::waitpid(members_[i].pid, nullptr, WNOHANG) == members_[i].pid) {
      members_[i].pid = -1;
      return false;
    }
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back(m.client_url);
  return out;
}

int EtcdCluster::leader() const {
  std::string eps;
  for (const auto& m : members_)
    if (m.pid > 0) eps += (eps.empty() ? "" : ",") + m.client_url;
  if (eps.empty()) return -1;
  std::vector<std::string> argv{kEtcdctl, "--endpoints", eps, "--dial-timeout", "1s",
                                "--command-timeout", "2s", "endpoint", "status", "-w", "json"};
  if (tls_) {
    argv.insert(argv.begin() + 1, {"--cacert", pki_.ca, "--cert", pki_.client_cert, "--key",
                                   pki_.client_key});
  }
  auto r = run(argv, {"ETCDCTL_API=3"});
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return -1;
  for (const auto& s : j) {
    auto st = s.value("Status", nlohmann::json::object());
    auto leader = st.value("leader", std::uint64_t{0});
    auto self = st.value("header", nlohmann::json::object()).value("member_id", std::uint64_t{0});
    if (leader == 0 || leader != self) continue;
    auto ep = s.value("Endpoint", std::string());
    for (size_t i = 0; i < members_.size(); ++i)
      if (members_[i].client_url == ep) return static_cast<int>(i);
  }
  return -1;
}

void EtcdCluster::kill(int i) {
  auto& m = members_.at(i);
  if (m.pid <= 0) return;
  ::kill(m.pid, SIGKILL);
  ::waitpid(m.pid, nullptr, 0);
  m.pid = -1;
}

bool EtcdCluster::restart(int i) {
  if (members_.at(i).pid > 0) return false;
  start_member(i);  // its data dir holds the cluster: the initial-cluster flags are ignored
  return wait_healthy(i, 30);
}

std::string EtcdCluster::log(int i) const {
  std::ifstream in(dir_->path() / (members_.at(i).name + ".log"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void EtcdCluster::stop_all() {
  // Stopping every member at once hangs the last leader on SIGTERM (RECIPES.md): followers
  // first, then the leader, each SIGKILLed after a grace time.
  int lead = members_.size() > 1 ? leader() : -1;
  for (size_t i = 0; i < members_.size(); ++i)
    if (static_cast<int>(i) != lead && members_[i].pid > 0) ::kill(members_[i].pid, SIGTERM);
  for (size_t i = 0; i < members_.size(); ++i)
    if (static_cast<int>(i) != lead) stop(members_[i], 3000ms);
  if (lead >= 0) stop(members_[lead], 2000ms);
}

EtcdCluster::~EtcdCluster() {
  stop_all();
  for (const auto& l : links_) run({"/usr/sbin/ip", "link", "del", l});
  for (const auto& m : members_)
    if (!m.netns.empty()) run({"/usr/sbin/ip", "netns", "del", m.netns});
  if (!bridge_.empty()) run({"/usr/sbin/ip", "link", "del", bridge_});
}

}  // namespace stack::test
