// Which published ports the routing mesh serves (reconciler/cluster_mesh.h mesh_services), read
// from a project's canonical JSON as `up` writes it to the cluster: ingress ports on a cluster
// overlay are, host-mode, host-IP and ephemeral ports are not; a service on no cluster overlay
// is named. Pure, no root.
#include <doctest/doctest.h>

#include "reconciler/cluster_mesh.h"
#include "spec/loader.h"

using namespace stack;

namespace {

std::string canonical(const std::string& yaml) {
  spec::LoadOptions o;
  o.files = {"-"};
  o.stdin_text = yaml;
  o.working_dir = "/tmp";
  auto s = spec::load(o);
  REQUIRE_MESSAGE(s, s.error().message);
  return spec::render_json(spec::stack_json(*s));
}

}  // namespace

TEST_CASE("mesh services: ingress ports of services on a cluster overlay, and no others") {
  auto json = canonical(R"(name: shop
services:
  web:
    image: busybox
    networks: [back, front]
    ports:
      - "8080:80"
      - "9000-9001:90"
      - "127.0.0.1:7000:70"
      - target: 81
        published: "8081"
        mode: host
      - "53:53/udp"
      - "82"
  local:
    image: busybox
    ports: ["6000:60"]
    networks: [fixed]
  quiet:
    image: busybox
    networks: [back]
networks:
  back:
    driver: overlay
  front:
    driver: overlay
    name: shared-front
  fixed:
    driver: overlay
    driver_opts: {peers: "10.0.0.2"}
)");
  std::vector<std::string> not_meshed;
  auto services = reconciler::mesh_services(json, &not_meshed);
  REQUIRE(services.size() == 1);
  const auto& web = services[0];
  CHECK(web.project == "shop");
  CHECK(web.service == "web");
  CHECK(web.network == "shop_back");  // the first cluster overlay it joins, by key
  using P = reconciler::MeshService::Port;
  std::vector<P> want = {{1, 53, 53}, {0, 8080, 80}, {0, 9000, 90}, {0, 9001, 90}};  // canonical order
  CHECK(web.ports == want);
  CHECK(not_meshed == std::vector<std::string>{"shop/local"});
  CHECK(reconciler::mesh_services("not json").empty());
}
