// /etc/stack/daemon.json parsing (common/daemon_config.h) and the journald fields of a log line
// (common/log.h): what a user who mistypes the file reads, and what `journalctl PROJECT=` finds.
#include <doctest/doctest.h>

#include "common/daemon_config.h"
#include "common/files.h"
#include "common/log.h"
#include "support/temp_dir.h"

using namespace stack;

namespace {
const std::filesystem::path kPath = "/etc/stack/daemon.json";
std::string error_of(const std::string& text) {
  auto r = parse_daemon_config(text, kPath);
  REQUIRE_FALSE(r);
  return r.error().message;
}
}  // namespace

TEST_CASE("daemon.json: every key, each the long flag of the same name") {
  auto r = parse_daemon_config(R"({"root": "/srv/stack", "run-root": "/run/stack2",
    "stacks-dir": "/srv/stacks.d", "resync": 2.5, "log-level": "debug",
    "userns-remap": "stackmap", "userns-layers": "copy"})", kPath);
  REQUIRE(r);
  CHECK(r->root == "/srv/stack");
  CHECK(r->run_root == "/run/stack2");
  CHECK(r->stacks_dir == "/srv/stacks.d");
  CHECK(r->resync == 2.5);
  CHECK(r->log_level == "debug");
  CHECK(r->userns_remap == "stackmap");
  CHECK(r->userns_layers == "copy");
  auto empty = parse_daemon_config("{}", kPath);
  REQUIRE(empty);
  CHECK_FALSE(empty->root);
  CHECK_FALSE(empty->resync);
}

TEST_CASE("daemon.json: a syntax error names file, line and column") {
  CHECK(error_of("{\n  \"root\": \"/srv\",\n  \"resync\": 5,,\n}").rfind(
            "/etc/stack/daemon.json:3:15: syntax error", 0) == 0);
}

TEST_CASE("daemon.json: an unknown key is an error naming it and the known keys") {
  CHECK(error_of(R"({"rot": "/srv"})") ==
        "/etc/stack/daemon.json: unknown key \"rot\" (keys: root, run-root, stacks-dir, resync, "
        "log-level, userns-remap, userns-layers, log-max-size, log-max-file, registries-config, "
        "cluster, node-name, advertise, cluster-ca, cluster-cert, cluster-key, ingress-subnet)");
}

TEST_CASE("daemon.json: wrong types and values name the key and what it takes") {
  CHECK(error_of(R"({"resync": "5s"})") ==
        "/etc/stack/daemon.json: \"resync\": expected a number of seconds from 0.01 to 86400, "
        "got \"5s\"");
  CHECK(error_of(R"({"resync": 0})").find("\"resync\": expected") != std::string::npos);
  CHECK(error_of(R"({"root": "var/lib/stack"})") ==
        "/etc/stack/daemon.json: \"root\": expected an absolute path, got \"var/lib/stack\"");
  CHECK(error_of(R"({"stacks-dir": 3})").find("\"stacks-dir\": expected an absolute path") !=
        std::string::npos);
  CHECK(error_of(R"({"log-level": "verbose"})") ==
        "/etc/stack/daemon.json: \"log-level\": expected one of debug info warn error, got "
        "\"verbose\"");
  CHECK(error_of(R"({"userns-layers": "shift"})").find("one of auto idmap copy") !=
        std::string::npos);
  CHECK(error_of(R"(["root"])") ==
        "/etc/stack/daemon.json: expected a JSON object of options (root, run-root, stacks-dir, "
        "resync, log-level, userns-remap, userns-layers, log-max-size, log-max-file, registries-config, "
        "cluster, node-name, advertise, cluster-ca, cluster-cert, cluster-key, ingress-subnet)");
}

TEST_CASE("daemon.json: default log rotation for services whose logging options set none") {
  auto r = parse_daemon_config(R"({"log-max-size": "50m", "log-max-file": 5})", kPath);
  REQUIRE(r);
  CHECK(r->log_max_size == 50 * 1024 * 1024);
  CHECK(r->log_max_file == 5);
  CHECK(parse_daemon_config(R"({"log-max-size": 4096})", kPath)->log_max_size == 4096);
  CHECK(error_of(R"({"log-max-size": "10x"})") ==
        "/etc/stack/daemon.json: \"log-max-size\": expected a size such as \"10m\" or bytes, "
        "got \"10x\"");
  CHECK(error_of(R"({"log-max-file": 0})").find("from 1 to 1000") != std::string::npos);
  auto reg = parse_daemon_config(R"({"registries-config": "/etc/stack/registries.json"})", kPath);
  REQUIRE(reg);
  CHECK(reg->registries_config == "/etc/stack/registries.json");
  CHECK(error_of(R"({"registries-config": "registries.json"})").find("an absolute path") !=
        std::string::npos);
  CHECK(parse_log_size("512k") == 512 * 1024);
  CHECK(parse_log_size("1G") == int64_t{1} << 30);
  CHECK(parse_log_size("7") == 7);
  CHECK_FALSE(parse_log_size("m"));
  CHECK_FALSE(parse_log_size("0"));
  CHECK_FALSE(parse_log_size("-1k"));
}

TEST_CASE("daemon.json: a missing file is every default, an unreadable one an error") {
  test::TempDir dir;
  auto none = load_daemon_config(dir / "daemon.json");
  REQUIRE(none);
  CHECK_FALSE(none->root);
  REQUIRE(write_file_atomic(dir / "daemon.json", R"({"resync": 1})"));
  auto some = load_daemon_config(dir / "daemon.json");
  REQUIRE(some);
  CHECK(some->resync == 1);
  auto directory = load_daemon_config(dir.path());
  CHECK_FALSE(directory);
}

TEST_CASE("journald fields: project, container and pass from a line's key=value words") {
  using F = std::vector<std::pair<std::string_view, std::string_view>>;
  CHECK(log::journal_fields("pass=p12 project=demo done in 4 ms") ==
        F{{"PROJECT", "demo"}, {"PASS", "p12"}});
  CHECK(log::journal_fields("optional dependency failed container=demo-web-1 pass=p3: boom") ==
        F{{"CONTAINER", "demo-web-1"}, {"PASS", "p3"}});
  CHECK(log::journal_fields("started container name=demo-web-1 pid=42") ==
        F{{"CONTAINER", "demo-web-1"}});
  CHECK(log::journal_fields("container exited name=demo-web-1 code=0") ==
        F{{"CONTAINER", "demo-web-1"}});
  CHECK(log::journal_fields("old_project=x network ready name=n").empty());
  CHECK(log::journal_fields("project= empty").empty());
}

TEST_CASE("daemon.json: the cluster keys, and what each refuses") {
  auto r = parse_daemon_config(R"({"cluster": "http://127.0.0.1:2379,https://10.0.0.5:2379/",
    "node-name": "node-1.lan", "advertise": "10.0.0.7", "cluster-ca": "/etc/stack/ca.pem",
    "cluster-cert": "/etc/stack/node.pem", "cluster-key": "/etc/stack/node-key.pem"})", kPath);
  REQUIRE(r);
  CHECK(*r->cluster == std::vector<std::string>{"http://127.0.0.1:2379", "https://10.0.0.5:2379"});
  CHECK(r->node_name == "node-1.lan");
  CHECK(r->advertise == "10.0.0.7");
  CHECK(r->cluster_ca == "/etc/stack/ca.pem");
  CHECK(r->cluster_cert == "/etc/stack/node.pem");
  CHECK(r->cluster_key == "/etc/stack/node-key.pem");
  auto list = parse_daemon_config(R"({"cluster": ["http://a:2379", "http://b:2379"]})", kPath);
  REQUIRE(list);
  CHECK(list->cluster->size() == 2);

  CHECK(error_of(R"({"cluster": "10.0.0.5:2379"})") ==
        "/etc/stack/daemon.json: \"cluster\": not an etcd client URL such as "
        "http://10.0.0.5:2379: \"10.0.0.5:2379\"");
  CHECK(error_of(R"({"cluster": [1]})").find("\"cluster\": expected etcd URLs") !=
        std::string::npos);
  CHECK(error_of(R"({"node-name": "-x"})").find("\"node-name\": not a node name") !=
        std::string::npos);
  CHECK(error_of(R"({"node-name": "a/b"})").find("not a node name") != std::string::npos);
  CHECK(error_of(R"({"advertise": "10.0.0"})") ==
        "/etc/stack/daemon.json: \"advertise\": expected an IPv4 address, got \"10.0.0\"");
  CHECK(error_of(R"({"cluster-key": "key.pem"})").find("\"cluster-key\": expected an absolute "
                                                       "path") != std::string::npos);
  auto ingress = parse_daemon_config(R"({"ingress-subnet": "10.250.0.0/20"})", kPath);
  REQUIRE(ingress);
  CHECK(ingress->ingress_subnet == "10.250.0.0/20");
  for (const char* bad : {"10.250.0.0", "10.250.0.0/30", "10.250.0.0/4", "10.250.0/16",
                          "10.250.0.0/16x", "fd00::/64"})
    CHECK_MESSAGE(error_of(std::string(R"({"ingress-subnet": ")") + bad + "\"}") ==
                      std::string("/etc/stack/daemon.json: \"ingress-subnet\": expected an IPv4 "
                                  "subnet A.B.C.D/N, N from 8 to 28, got \"") + bad + "\"",
                  bad);
}

TEST_CASE("daemon.json: the packaged examples parse") {
  for (const char* name : {"daemon.example.json", "daemon.cluster.example.json"}) {
    auto path = std::filesystem::path(STACK_SOURCE_DIR) / "packaging" / name;
    auto r = load_daemon_config(path);
    CHECK_MESSAGE(r, name << ": " << (r ? "" : r.error().message));
  }
  auto cluster = load_daemon_config(std::filesystem::path(STACK_SOURCE_DIR) / "packaging" /
                                    "daemon.cluster.example.json");
  REQUIRE(cluster);
  CHECK(cluster->cluster->size() == 3);
  CHECK(cluster->node_name == "node-1");
}
