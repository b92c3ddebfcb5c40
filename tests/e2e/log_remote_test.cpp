// The none, gelf and fluentd logging drivers as a user sees them: none keeps nothing on disk
// and `stack logs` says it cannot read it; gelf's documents reach a loopback UDP listener
// (gzip and zlib, a long line in chunks, reassembled here) and a TCP one (NUL-delimited);
// fluentd's forward entries reach a loopback TCP listener and a unix socket, decoded here from
// msgpack. An unreachable TCP collector fails the start naming it.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "common/unique_fd.h"
#include "e2e/network_support.h"

using namespace stack::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// A loopback socket the test listens on: UDP or TCP on 127.0.0.1 (port chosen), or a unix
// stream socket at PATH.
struct Collector {
  stack::UniqueFd fd;
  int port = 0;
  std::vector<stack::UniqueFd> peers;
  static Collector inet(int type) {
    Collector c;
    c.fd.reset(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(c.fd.get(), reinterpret_cast<sockaddr*>(&in), sizeof in) == 0);
    if (type == SOCK_STREAM) REQUIRE(::listen(c.fd.get(), 8) == 0);
    socklen_t len = sizeof in;
    ::getsockname(c.fd.get(), reinterpret_cast<sockaddr*>(&in), &len);
    c.port = ntohs(in.sin_port);
    return c;
  }
  static Collector unix_stream(const std::string& path) {
    Collector c;
    c.fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.data(), path.size());
    REQUIRE(::bind(c.fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0);
    REQUIRE(::listen(c.fd.get(), 8) == 0);
    return c;
  }
  // Datagrams until DONE says the ones so far are enough, or WAIT passes.
  std::vector<std::string> datagrams(const std::function<bool(const std::vector<std::string>&)>& done,
                                     std::chrono::milliseconds wait = 15s) {
    std::vector<std::string> out;
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (!done(out) && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[65536];
      ssize_t got = ::recv(fd.get(), buf, sizeof buf, 0);
      if (got > 0) out.emplace_back(buf, static_cast<size_t>(got));
    }
    return out;
  }
  // The bytes of every connection accepted, until DONE says they are enough or WAIT passes.
  std::string stream(const std::function<bool(const std::string&)>& done,
                     std::chrono::milliseconds wait = 15s) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (!done(out) && std::chrono::steady_clock::now() < deadline) {
      std::vector<pollfd> fds{{fd.get(), POLLIN, 0}};
      for (auto& p : peers) fds.push_back({p.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
      if (fds[0].revents & POLLIN) peers.emplace_back(::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
      for (size_t i = 1; i < fds.size(); i++) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        char buf[65536];
        ssize_t got = ::recv(fds[i].fd, buf, sizeof buf, 0);
        if (got > 0) out.append(buf, static_cast<size_t>(got));
      }
    }
    return out;
  }
};

// gzip or zlib, as zlib's inflate detects (windowBits 15 + 32); the input as is otherwise.
std::string inflate_any(const std::string& in) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 15 + 32) == Z_OK);
  std::string out(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&z, Z_FINISH);
  out.resize(z.total_out);
  inflateEnd(&z);
  REQUIRE_MESSAGE(rc == Z_STREAM_END, "not a gzip or zlib stream");
  return out;
}

// GELF datagrams as whole messages: chunks (0x1e 0x0f, id, seq, count) put back together.
std::vector<std::string> gelf_messages(const std::vector<std::string>& datagrams) {
  std::vector<std::string> out;
  std::map<std::string, std::map<int, std::string>> parts;
  std::map<std::string, int> counts;
  for (const auto& d : datagrams) {
    if (d.size() > 12 && d[0] == '\x1e' && d[1] == '\x0f') {
      std::string id = d.substr(2, 8);
      parts[id][static_cast<unsigned char>(d[10])] = d.substr(12);
      counts[id] = static_cast<unsigned char>(d[11]);
      if (static_cast<int>(parts[id].size()) == counts[id]) {
        std::string whole;
        for (auto& [seq, data] : parts[id]) whole += data;
        out.push_back(whole);
      }
    } else {
      out.push_back(d);
    }
  }
  return out;
}

// One msgpack value at IN[AT] (the kinds fluentd's entries hold) as JSON; EventTime as
// {"s": seconds, "ns": nanoseconds}.
json unpack(const std::string& in, size_t& at) {
  REQUIRE(at < in.size());
  auto byte = [&] { return static_cast<uint8_t>(in.at(at++)); };
  auto be = [&](int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | byte();
    return v;
  };
  uint8_t b = byte();
  auto str = [&](size_t n) {
    std::string s = in.substr(at, n);
    at += n;
    return json(s);
  };
  auto arr = [&](size_t n) {
    json a = json::array();
    for (size_t i = 0; i < n; i++) a.push_back(unpack(in, at));
    return a;
  };
  auto map = [&](size_t n) {
    json m = json::object();
    for (size_t i = 0; i < n; i++) {
      std::string k = unpack(in, at).get<std::string>();
      m[k] = unpack(in, at);
    }
    return m;
  };
  if (b <= 0x7f) return b;
  if ((b & 0xe0) == 0xa0) return str(b & 0x1f);
  if ((b & 0xf0) == 0x90) return arr(b & 0x0f);
  if ((b & 0xf0) == 0x80) return map(b & 0x0f);
  switch (b) {
    case 0xcc: return be(1);
    case 0xcd: return be(2);
    case 0xce: return be(4);
    case 0xcf: return be(8);
    case 0xd9: return str(be(1));
    case 0xda: return str(be(2));
    case 0xdb: return str(be(4));
    case 0xdc: return arr(be(2));
    case 0xde: return map(be(2));
    case 0xd7: {
      REQUIRE(byte() == 0);  // fluentd's EventTime
      uint64_t s = be(4);
      return json{{"s", s}, {"ns", be(4)}};
    }
  }
  FAIL("unexpected msgpack byte " << int(b));
  return {};
}

// Every whole entry in BYTES.
std::vector<json> fluentd_entries(const std::string& bytes) {
  std::vector<json> out;
  size_t at = 0;
  while (at < bytes.size()) {
    size_t start = at;
    // A message cut by the read ends the list; the caller reads on.
    if (static_cast<uint8_t>(bytes[at]) != 0x93) break;
    try {
      at++;
      json e = json::array();
      for (int i = 0; i < 3; i++) e.push_back(unpack(bytes, at));
      out.push_back(e);
    } catch (...) {
      at = start;
      break;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("logging driver none: nothing on disk, and logs says the driver cannot be read") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("lognone");
  env.uses(p);
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sh, -c, "echo secret-line; echo err-line >&2; touch /tmp/done; exec sleep 3600"]
    logging: {driver: none}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  std::string name = p + "-web-1";
  // The service has written its lines once /tmp/done exists.
  for (int i = 0; i < 100 && env.stack({"exec", "web", "test", "-e", "/tmp/done"}).code != 0; i++)
    std::this_thread::sleep_for(50ms);
  auto dir = env.root() / "containers" / name;
  REQUIRE(std::filesystem::is_directory(dir));
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    CHECK_MESSAGE(e.path().filename().string().rfind("container.log", 0) != 0, e.path());
    if (e.is_regular_file())
      CHECK_MESSAGE(read_text(e.path()).find("secret-line") == std::string::npos, e.path());
  }
  auto logs = env.stack({"logs", "web"});
  CHECK(logs.code != 0);
  CHECK_MESSAGE(logs.err.find("configured logging driver does not support reading") !=
                    std::string::npos,
                logs.err);
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("logging driver gelf over udp: gzip and zlib documents, a long line in chunks") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("gelfudp");
  env.uses(p);
  auto udp = Collector::inet(SOCK_DGRAM);
  std::string address = "udp://127.0.0.1:" + std::to_string(udp.port);
  // The long line: 6000 characters of base64 from /dev/urandom, which deflate cannot shrink
  // below GELF's 1420-byte datagram.
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sh, -c, "echo gzip-line; echo err-line >&2; exec sleep 3600"]
    labels: {team: core}
    environment: {REGION: north}
    logging:
      driver: gelf
      options: {gelf-address: ")" + address + R"(", tag: "t-{{.Name}}", labels: team, env: REGION}
  big:
    image: busybox
    command: [sh, -c, "echo long-$$(head -c 4500 /dev/urandom | base64 | tr -d '\\n'); exec sleep 3600"]
    logging:
      driver: gelf
      options: {gelf-address: ")" + address + R"(", gelf-compression-type: zlib, gelf-compression-level: "9"}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  std::vector<json> docs;
  auto enough = [&](const std::vector<std::string>& got) {
    docs.clear();
    for (const auto& m : gelf_messages(got)) docs.push_back(json::parse(inflate_any(m)));
    return docs.size() >= 3;
  };
  auto got = udp.datagrams(enough);
  REQUIRE_MESSAGE(docs.size() == 3, got.size());
  CHECK(got.size() > 3);  // the long line came in chunks
  std::map<std::string, json> by_text;
  for (const auto& d : docs) by_text[d["short_message"].get<std::string>().substr(0, 5)] = d;
  REQUIRE(by_text.count("gzip-"));
  REQUIRE(by_text.count("err-l"));
  REQUIRE(by_text.count("long-"));
  const json& web = by_text["gzip-"];
  std::string name = p + "-web-1";
  CHECK(web["version"] == "1.1");
  CHECK(web["short_message"] == "gzip-line");
  CHECK(web["level"] == 6);
  CHECK(by_text["err-l"]["level"] == 3);
  CHECK(web["host"].is_string());
  CHECK(web["timestamp"].is_number());
  CHECK(web["_container_name"] == name);
  CHECK(web["_container_id"] == name);
  CHECK(web["_image_name"] == "busybox:latest");  // as the loader normalises it
  CHECK(web["_image_id"].get<std::string>().rfind("sha256:", 0) == 0);
  CHECK(web["_tag"] == "t-" + name);
  CHECK(web["_command"].get<std::string>().rfind("sh -c echo gzip-line", 0) == 0);
  CHECK(web["_created"].get<std::string>().size() == 30);
  CHECK(web["_team"] == "core");
  CHECK(web["_REGION"] == "north");
  const json& big = by_text["long-"];
  CHECK(big["short_message"].get<std::string>().size() > 6000);
  CHECK(big["_container_name"] == p + "-big-1");
  // Dual logging: the local copy is still what `stack logs` reads.
  auto logs = env.stack({"logs", "web"});
  CHECK(logs.out.find("gzip-line") != std::string::npos);
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("logging driver gelf over tcp: NUL-delimited documents, and nobody listening fails the start") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("gelftcp");
  env.uses(p);
  auto tcp = Collector::inet(SOCK_STREAM);
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sh, -c, "echo tcp-one; echo tcp-two; exec sleep 3600"]
    logging:
      driver: gelf
      options: {gelf-address: "tcp://127.0.0.1:)" + std::to_string(tcp.port) + R"("}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto bytes = tcp.stream([](const std::string& b) { return std::count(b.begin(), b.end(), '\0') >= 2; });
  std::vector<json> docs;
  for (size_t at = 0, nul; (nul = bytes.find('\0', at)) != std::string::npos; at = nul + 1)
    docs.push_back(json::parse(bytes.substr(at, nul - at)));
  REQUIRE(docs.size() == 2);
  CHECK(docs[0]["short_message"] == "tcp-one");
  CHECK(docs[1]["short_message"] == "tcp-two");
  CHECK(docs[0]["_container_name"] == p + "-web-1");
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);

  // A port nobody listens on (the collector's, closed): the start fails naming it.
  int port = tcp.port;
  tcp.fd.reset();
  tcp.peers.clear();
  env.write("name: " + p + "\nservices:\n  web:\n    image: busybox\n    command: [sleep, \"3600\"]\n"
            "    logging: {driver: gelf, options: {gelf-address: \"tcp://127.0.0.1:" +
            std::to_string(port) + "\"}}\n");
  auto down = env.stack({"up", "-d"});
  CHECK(down.code != 0);
  CHECK_MESSAGE(down.err.find("logging driver gelf: connect tcp://127.0.0.1:" +
                              std::to_string(port)) != std::string::npos,
                down.err);
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("logging driver fluentd: forward entries over tcp and a unix socket") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("fluentd");
  env.uses(p);
  auto tcp = Collector::inet(SOCK_STREAM);
  std::string sock = (env.project_dir() / "fluent.sock").string();
  auto unix_sock = Collector::unix_stream(sock);
  env.write("name: " + p + R"(
services:
  web:
    image: busybox
    command: [sh, -c, "echo fluent-out; echo fluent-err >&2; exec sleep 3600"]
    environment: {REGION: north}
    logging:
      driver: fluentd
      options: {fluentd-address: "127.0.0.1:)" + std::to_string(tcp.port) + R"(", tag: "docker.{{.Name}}", env: REGION}
  box:
    image: busybox
    command: [sh, -c, "echo unix-line; exec sleep 3600"]
    logging:
      driver: fluentd
      options: {fluentd-address: "unix://)" + sock + R"(", fluentd-sub-second-precision: "true"}
)");
  auto up = env.stack({"up", "-d"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  auto bytes = tcp.stream([](const std::string& b) { return fluentd_entries(b).size() >= 2; });
  auto entries = fluentd_entries(bytes);
  REQUIRE(entries.size() == 2);
  std::string name = p + "-web-1";
  std::map<std::string, json> by_source;
  for (const auto& e : entries) by_source[e[2]["source"].get<std::string>()] = e;
  REQUIRE(by_source.count("stdout"));
  REQUIRE(by_source.count("stderr"));
  const json& out = by_source["stdout"];
  CHECK(out[0] == "docker." + name);
  CHECK(out[1].is_number_unsigned());
  CHECK(out[1].get<uint64_t>() > 1700000000);
  CHECK(out[2]["log"] == "fluent-out");
  CHECK(out[2]["container_id"] == name);
  CHECK(out[2]["container_name"] == "/" + name);
  CHECK(out[2]["REGION"] == "north");
  CHECK(by_source["stderr"][2]["log"] == "fluent-err");

  auto ubytes = unix_sock.stream([](const std::string& b) { return fluentd_entries(b).size() >= 1; });
  auto u = fluentd_entries(ubytes);
  REQUIRE(u.size() == 1);
  CHECK(u[0][0] == p + "-box-1");  // the default tag: stack's id, the name
  CHECK(u[0][1]["s"].get<uint64_t>() > 1700000000);  // an EventTime
  CHECK(u[0][1]["ns"].get<uint64_t>() < 1000000000);
  CHECK(u[0][2]["log"] == "unix-line");
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}

TEST_CASE("logging driver fluentd with nobody listening: the start fails, unless fluentd-async") {
  STACK_REQUIRE_ROOT();
  StackEnv env;
  auto p = unique_project("fluentdown");
  env.uses(p);
  int port;
  {
    auto closed = Collector::inet(SOCK_STREAM);  // a port just freed: nobody listens on it
    port = closed.port;
  }
  std::string address = "tcp://127.0.0.1:" + std::to_string(port);
  env.write("name: " + p + "\nservices:\n  web:\n    image: busybox\n    command: [sleep, \"3600\"]\n"
            "    logging: {driver: fluentd, options: {fluentd-address: \"" + address + "\"}}\n");
  auto up = env.stack({"up", "-d"});
  CHECK(up.code != 0);
  CHECK_MESSAGE(up.err.find("logging driver fluentd: connect " + address) != std::string::npos,
                up.err);
  env.write("name: " + p + "\nservices:\n  web:\n    image: busybox\n    command: [sleep, \"3600\"]\n"
            "    logging: {driver: fluentd, options: {fluentd-address: \"" + address +
            "\", fluentd-async: \"true\", fluentd-max-retries: \"1\", fluentd-retry-wait: 100ms}}\n");
  auto async_up = env.stack({"up", "-d"});
  CHECK_MESSAGE(async_up.code == 0, async_up.err);
  REQUIRE(env.stack({"down", "-t", "0"}).code == 0);
  CHECK(env.leftovers(p).empty());
}
