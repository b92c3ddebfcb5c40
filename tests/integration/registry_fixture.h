// Test fixtures for registry pulls, shared by the integration and e2e image tests (header-only):
// a real registry (Debian's docker-registry) on a free 127.0.0.1 port with its storage in a temp
// directory, OCI layouts built with umoci from directories (the BusyBox rootfs first) and pushed
// with skopeo, and a loopback proxy that logs requests and can cut a transfer, gate requests
// behind a bearer token, redirect blobs or corrupt them. Everything is stopped and removed
// pass or fail; traffic stays on loopback.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace stack::test {

namespace regfix {

inline int listen_on(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline int port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

inline int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// One GET on loopback; the status code, 0 when nothing answered.
inline int http_status(int port, const std::string& path) {
  int fd = connect_to(port);
  if (fd < 0) return 0;
  send_all(fd, "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  char buf[64] = {};
  pollfd p{fd, POLLIN, 0};
  ssize_t n = ::poll(&p, 1, 2000) == 1 ? ::recv(fd, buf, sizeof buf - 1, 0) : 0;
  ::close(fd);
  return n > 12 ? std::atoi(buf + 9) : 0;
}

inline std::string sha256_of(const std::filesystem::path& file) {
  auto r = run({"/usr/bin/sha256sum", file.string()});
  return r.out.substr(0, 64);
}

}  // namespace regfix

inline int free_port() {
  int fd = regfix::listen_on(0);
  int port = regfix::port_of(fd);
  ::close(fd);
  return port;
}

inline bool registry_tools_present() {
  for (const char* t : {"/usr/bin/docker-registry", "/usr/bin/skopeo", "/usr/bin/umoci"})
    if (::access(t, X_OK) != 0) return false;
  return true;
}

// docker-registry on 127.0.0.1:port(), storage under a temp dir; stopped pass or fail.
class Registry {
 public:
  Registry() : port_(free_port()) {
    write_text(dir_ / "config.yml",
               "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
               "storage:\n  filesystem:\n    rootdirectory: " +
                   (dir_ / "data").string() +
                   "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" +
                   std::to_string(port_) + "\n");
    start();
  }
  ~Registry() { stop(); }
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  void start() {
    std::string log = (dir_ / "registry.log").string(), config = (dir_ / "config.yml").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      ::dup2(out, 1);
      ::dup2(out, 2);
      ::execl("/usr/bin/docker-registry", "docker-registry", "serve", config.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 500 && regfix::http_status(port_, "/v2/") != 200; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 300; i++) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string log() const { return read_text(dir_ / "registry.log"); }
  // Access-log lines holding NEEDLE ("\"GET /v2/app/blobs/").
  [[nodiscard]] int count(const std::string& needle) const {
    std::string text = log();
    int n = 0;
    for (size_t p = 0; (p = text.find(needle, p)) != std::string::npos; p += needle.size()) n++;
    return n;
  }
  // skopeo copy of LAYOUT:TAG to NAME (with its tag) on this registry; ALL keeps an index.
  void push(const std::filesystem::path& layout, const std::string& tag, const std::string& name,
            bool all = false, bool docker_v2s2 = false) const {
    std::vector<std::string> argv = {"/usr/bin/skopeo", "copy", "-q", "--dest-tls-verify=false"};
    if (all) argv.push_back("--all");
    if (docker_v2s2) argv.insert(argv.end(), {"--format", "v2s2"});
    argv.push_back("oci:" + layout.string() + ":" + tag);
    argv.push_back("docker://" + host() + "/" + name);
    auto r = run(argv);
    if (r.code != 0) throw std::runtime_error("skopeo push failed: " + r.err);
  }

 private:
  TempDir dir_{"stack-registry"};
  int port_;
  pid_t pid_ = 0;
};

// An OCI image layout built with umoci: init, one layer per insert, config edits.
class Layout {
 public:
  Layout(std::filesystem::path dir, std::string tag) : dir_(std::move(dir)), tag_(std::move(tag)) {
    umoci({"init", "--layout", dir_.string()});
    umoci({"new", "--image", ref()});
  }
  [[nodiscard]] std::string ref() const { return dir_.string() + ":" + tag_; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  [[nodiscard]] const std::string& tag() const { return tag_; }
  // A layer holding SOURCE (a directory) at TARGET.
  Layout& insert(const std::filesystem::path& source, const std::string& target = "/") {
    umoci({"insert", "--image", ref(), source.string(), target});
    return *this;
  }
  Layout& whiteout(const std::string& target) {
    umoci({"insert", "--image", ref(), "--whiteout", target});
    return *this;
  }
  Layout& opaque(const std::filesystem::path& source, const std::string& target) {
    umoci({"insert", "--image", ref(), "--opaque", source.string(), target});
    return *this;
  }
  Layout& config(std::vector<std::string> args) {
    std::vector<std::string> a = {"config", "--image", ref()};
    a.insert(a.end(), args.begin(), args.end());
    umoci(a);
    return *this;
  }

  // The JSON of a blob; its digest.
  [[nodiscard]] nlohmann::json blob(const std::string& digest) const {
    return nlohmann::json::parse(read_text(dir_ / "blobs/sha256" / digest.substr(7)));
  }
  [[nodiscard]] nlohmann::json index() const {
    return nlohmann::json::parse(read_text(dir_ / "index.json"));
  }
  [[nodiscard]] nlohmann::json& entry(nlohmann::json& index) const {
    for (auto& m : index["manifests"])
      if (m["annotations"]["org.opencontainers.image.ref.name"] == tag_) return m;
    throw std::runtime_error("no tag " + tag_ + " in " + dir_.string());
  }
  // Writes J as a blob: its descriptor.
  nlohmann::json put(const nlohmann::json& j, const std::string& media_type) const {
    std::string text = j.dump();
    auto tmp = dir_ / "blobs/sha256/.new";
    write_text(tmp, text);
    std::string hex = regfix::sha256_of(tmp);
    std::filesystem::rename(tmp, dir_ / "blobs/sha256" / hex);
    return {{"mediaType", media_type}, {"digest", "sha256:" + hex}, {"size", text.size()}};
  }
  // The manifest of the tag: EDIT changes its config (Healthcheck, architecture, ...).
  Layout& edit_config(const std::function<void(nlohmann::json&)>& edit) {
    auto idx = index();
    auto& e = entry(idx);
    auto manifest = blob(e["digest"]);
    auto config = blob(manifest["config"]["digest"]);
    edit(config);
    manifest["config"] = put(config, "application/vnd.oci.image.config.v1+json");
    auto desc = put(manifest, "application/vnd.oci.image.manifest.v1+json");
    e["digest"] = desc["digest"];
    e["size"] = desc["size"];
    write_text(dir_ / "index.json", idx.dump());
    return *this;
  }
  // The tag becomes an OCI index: its manifest for linux/amd64 and a decoy for linux/arm64/v8
  // (the same layers, a config saying arm64, and an extra layer-less marker env).
  Layout& make_index() {
    auto idx = index();
    auto& e = entry(idx);
    auto manifest = blob(e["digest"]);
    auto config = blob(manifest["config"]["digest"]);
    config["architecture"] = "arm64";
    config["variant"] = "v8";
    config["config"]["Env"].push_back("DECOY=arm64");
    auto decoy = manifest;
    decoy["config"] = put(config, "application/vnd.oci.image.config.v1+json");
    auto decoy_desc = put(decoy, "application/vnd.oci.image.manifest.v1+json");
    decoy_desc["platform"] = {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}};
    nlohmann::json amd = {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                          {"digest", e["digest"]},
                          {"size", e["size"]},
                          {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}};
    nlohmann::json index_doc = {{"schemaVersion", 2},
                                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                                {"manifests", {decoy_desc, amd}}};
    auto d = put(index_doc, "application/vnd.oci.image.index.v1+json");
    e["digest"] = d["digest"];
    e["size"] = d["size"];
    e["mediaType"] = d["mediaType"];
    write_text(dir_ / "index.json", idx.dump());
    return *this;
  }
  // The digest the tag names now.
  [[nodiscard]] std::string digest() const {
    auto idx = index();
    return entry(idx)["digest"];
  }

 private:
  static void umoci(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/umoci"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv);
    if (r.code != 0) throw std::runtime_error("umoci " + args[0] + " failed: " + r.err);
  }
  std::filesystem::path dir_;
  std::string tag_;
};

// A TCP proxy on 127.0.0.1:port() to a target port, one request per connection (it makes each
// "Connection: close"), logging every request head. Modes for tests:
// - cut(needle, bytes, on_cut): the first answer to a request whose line holds NEEDLE is cut
//   after BYTES, then ON_CUT runs (on its own thread: it may stop and restart the registry);
// - gate(user, password): /v2/ needs "Authorization: Bearer <token>", else 401 with a bearer
//   challenge whose realm is this proxy's /token, which hands the token for basic USER:PASSWORD;
// - redirect_blobs(): blob GETs are answered 307 to the registry itself;
// - corrupt_blobs(): one byte of each blob answer is changed.
class Proxy {
 public:
  explicit Proxy(int target) : target_(target) {
    listen_ = regfix::listen_on(0);
    port_ = regfix::port_of(listen_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~Proxy() {
    stopping_ = true;
    ::shutdown(listen_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_);
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
    if (on_cut_thread_.joinable()) on_cut_thread_.join();
  }
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::vector<std::string> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // Request heads (whole, headers included) holding NEEDLE.
  [[nodiscard]] int count(const std::string& needle) const {
    int n = 0;
    for (const auto& r : requests())
      if (r.find(needle) != std::string::npos) n++;
    return n;
  }
  void cut(std::string needle, size_t bytes, std::function<void()> on_cut = {}) {
    std::lock_guard lock(mu_);
    cut_needle_ = std::move(needle);
    cut_bytes_ = bytes;
    on_cut_ = std::move(on_cut);
  }
  [[nodiscard]] bool was_cut() const { return cut_done_; }
  void gate(std::string user, std::string password) {
    user_ = std::move(user);
    password_ = std::move(password);
  }
  void redirect_blobs() { redirect_ = true; }
  void corrupt_blobs() { corrupt_ = true; }

 private:
  void accept_loop() {
    while (!stopping_) {
      int c = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard lock(mu_);
      open_.push_back(c);
      threads_.emplace_back([this, c] { serve(c); });
    }
  }

  static std::string header_value(const std::string& head, const std::string& name) {
    std::string lower = head;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    size_t p = lower.find("\r\n" + name + ":");
    if (p == std::string::npos) return {};
    p += name.size() + 3;
    size_t end = head.find("\r\n", p);
    std::string v = head.substr(p, end - p);
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    return v;
  }

  void answer(int c, int status, const std::string& extra, const std::string& body) {
    regfix::send_all(c, "HTTP/1.1 " + std::to_string(status) +
                            " X\r\nContent-Length: " + std::to_string(body.size()) +
                            "\r\nConnection: close\r\n" + extra + "\r\n" + body);
  }

  void serve(int c) {
    std::string head;
    char buf[65536];
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return finish(c, -1);
      head.append(buf, static_cast<size_t>(n));
      // A TLS handshake (a client probing for HTTPS) is no HTTP request: closed at once.
      if (!std::isupper(static_cast<unsigned char>(head[0]))) return finish(c, -1);
    }
    std::string line = head.substr(0, head.find("\r\n"));
    {
      std::lock_guard lock(mu_);
      requests_.push_back(head.substr(0, head.find("\r\n\r\n")));
    }
    std::string path = line.substr(line.find(' ') + 1);
    path = path.substr(0, path.find(' '));
    if (!user_.empty()) {
      if (path.starts_with("/token")) {
        std::string want = "Basic " + base64(user_ + ":" + password_);
        if (header_value(head, "authorization") != want)
          answer(c, 401, "", "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
        else
          answer(c, 200, "Content-Type: application/json\r\n", "{\"token\":\"t0ken\"}");
        return finish(c, -1);
      }
      if (header_value(head, "authorization") != "Bearer t0ken") {
        answer(
            c, 401,
            "WWW-Authenticate: Bearer realm=\"http://" + host() +
                "/token\",service=\"test-registry\",scope=\"repository:x:pull\"\r\n",
            "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}");
        return finish(c, -1);
      }
    }
    bool blob = path.find("/blobs/sha256:") != std::string::npos && line.starts_with("GET");
    if (redirect_ && blob) {
      answer(c, 307, "Location: http://127.0.0.1:" + std::to_string(target_) + path + "\r\n", "");
      return finish(c, -1);
    }
    int up = regfix::connect_to(target_);
    if (up < 0) return finish(c, -1);  // the registry is down: an empty answer
    // One request per connection: the answer ends when the registry closes.
    std::string rewritten = head;
    size_t ka = rewritten.find("\r\n\r\n");
    rewritten.insert(ka, "\r\nConnection: close");
    regfix::send_all(up, rewritten);
    size_t limit = SIZE_MAX;
    {
      std::lock_guard lock(mu_);
      if (!cut_needle_.empty() && !cut_done_ && line.find(cut_needle_) != std::string::npos)
        limit = cut_bytes_;
    }
    size_t sent = 0;
    bool corrupted = false;
    for (;;) {
      ssize_t n = ::recv(up, buf, sizeof buf, 0);
      if (n <= 0) break;
      size_t m = std::min(static_cast<size_t>(n), limit - sent);
      std::string_view chunk(buf, m);
      std::string changed;
      if (corrupt_ && blob && !corrupted) {
        size_t body = sent == 0 ? chunk.find("\r\n\r\n") : std::string_view::npos;
        if (body != std::string_view::npos && body + 4 < chunk.size()) {
          changed = std::string(chunk);
          changed[body + 4] ^= 0x5a;
          chunk = changed;
          corrupted = true;
        }
      }
      if (!regfix::send_all(c, chunk)) break;
      sent += m;
      if (sent >= limit) {
        std::function<void()> cb;
        {
          std::lock_guard lock(mu_);
          cut_done_ = true;
          cb = on_cut_;
        }
        if (cb) on_cut_thread_ = std::thread(cb);
        break;
      }
    }
    ::close(up);
    finish(c, -1);
  }

  void finish(int c, int) {
    std::lock_guard lock(mu_);
    std::erase(open_, c);
    ::close(c);
  }

  static std::string base64(std::string_view in) {
    static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < in.size(); i += 3) {
      uint32_t v = uint8_t(in[i]) << 16;
      if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
      if (i + 2 < in.size()) v |= uint8_t(in[i + 2]);
      out += k[(v >> 18) & 63];
      out += k[(v >> 12) & 63];
      out += i + 1 < in.size() ? k[(v >> 6) & 63] : '=';
      out += i + 2 < in.size() ? k[v & 63] : '=';
    }
    return out;
  }

  int target_, listen_ = -1, port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<int> open_;
  std::vector<std::string> requests_;
  std::string cut_needle_;
  size_t cut_bytes_ = 0;
  std::atomic<bool> cut_done_{false};
  std::function<void()> on_cut_;
  std::thread on_cut_thread_;
  std::string user_, password_;
  std::atomic<bool> redirect_{false}, corrupt_{false};
};

// A directory of COUNT incompressible bytes in one file NAME: a layer big enough to cut.
inline void random_file(const std::filesystem::path& file, size_t count) {
  std::filesystem::create_directories(file.parent_path());
  auto r = run({"/usr/bin/head", "-c", std::to_string(count), "/dev/urandom"});
  write_text(file, r.out);
}

}  // namespace stack::test
