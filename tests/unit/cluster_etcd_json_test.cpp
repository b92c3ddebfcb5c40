// EtcdStore's pieces that need no etcd: endpoints as given on the command line, base64 of any
// bytes, prefix ranges as etcd wants them, and answers read without throwing on odd input.
#include <doctest/doctest.h>

#include "cluster/etcd_http.h"
#include "cluster/etcd_json.h"

using namespace stack;
using namespace stack::cluster;
using namespace stack::cluster::etcd_json;

TEST_CASE("etcd endpoints parse or name what is wrong") {
  auto a = parse_endpoint("http://127.0.0.1:2379");
  REQUIRE(a);
  CHECK_FALSE(a->tls);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == "2379");
  auto b = parse_endpoint("https://[::1]:2379/");
  REQUIRE(b);
  CHECK(b->tls);
  CHECK(b->host == "::1");
  auto bad = parse_endpoint("127.0.0.1:2379");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message ==
        "etcd endpoint 127.0.0.1:2379: expected http://HOST:PORT or https://HOST:PORT");
  CHECK(parse_endpoint("http://h").error().message == "etcd endpoint http://h: no port");
  CHECK_FALSE(parse_endpoint("http://h:80x"));
  CHECK_FALSE(parse_endpoint("http://h:80/v3"));
}

TEST_CASE("etcd base64 round-trips any bytes") {
  for (std::string s : {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
                        std::string("\0\xff\n\x80", 4), std::string(1000, '\xfe')}) {
    auto back = base64_decode(base64_encode(s));
    REQUIRE(back);
    CHECK(*back == s);
  }
  CHECK(base64_encode("/a") == "L2E=");
  CHECK_FALSE(base64_decode("abc"));
  CHECK_FALSE(base64_decode("a$c="));
}

TEST_CASE("etcd prefix ranges end where etcd expects") {
  json j;
  set_range(j, KeyRange::with_prefix("/stack/ipam/n/addr/"));
  CHECK(j["range_end"] == base64_encode("/stack/ipam/n/addr0"));
  json all;
  set_range(all, KeyRange::with_prefix(""));
  CHECK(all["key"] == base64_encode(std::string(1, '\0')));
  CHECK(all["range_end"] == base64_encode(std::string(1, '\0')));
  json ff;
  set_range(ff, KeyRange::with_prefix(std::string("a\xff", 2)));
  CHECK(ff["range_end"] == base64_encode("b"));
  json exact;
  set_range(exact, KeyRange::exact("/k"));
  CHECK_FALSE(exact.contains("range_end"));
}

TEST_CASE("etcd answers are read without throwing on odd input") {
  auto j = json::parse(R"({"header":{"revision":"42"},"kvs":[{"key":"L2E=","version":7,
    "create_revision":"x","value":"!!"}],"count":"1","succeeded":"yes"})");
  CHECK(header_rev(j) == 42);
  auto kvs = kvs_of(j);
  REQUIRE(kvs.size() == 1);
  CHECK(kvs[0].key == "/a");
  CHECK(kvs[0].version == 7);
  CHECK(kvs[0].create_revision == 0);
  CHECK(kvs[0].value.empty());
  CHECK_FALSE(flag(j, "succeeded"));
  CHECK(i64(json::array(), "x") == 0);
  CHECK(member(json(3), "x").is_null());
  CHECK(error_text(json::parse(R"({"error":"etcdserver: no leader","code":14})"), "raw") ==
        "etcdserver: no leader");
  CHECK(error_text(json(nullptr), "raw") == "raw");
}
