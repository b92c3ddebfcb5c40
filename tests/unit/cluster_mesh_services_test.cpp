// Which published ports the routing mesh serves (reconciler/cluster_mesh.h mesh_services), read
// from a project's canonical JSON as `up` writes it to the cluster, after attach_ingress
// (reconciler/cluster_ingress.h) joined its services to the ingress network: ingress ports of
// every service with an interface of its own are, on whatever network it is; host-mode, host-IP
// and ephemeral ports not yet numbered are not; a service with network_mode is named. Pure.
#include <doctest/doctest.h>

#include <algorithm>

#include "reconciler/cluster_ingress.h"
#include "reconciler/cluster_mesh.h"
#include "spec/loader.h"

using namespace stack;

namespace {

spec::Stack load(const std::string& yaml) {
  spec::LoadOptions o;
  o.files = {"-"};
  o.stdin_text = yaml;
  o.working_dir = "/tmp";
  auto s = spec::load(o);
  REQUIRE_MESSAGE(s, s.error().message);
  return *s;
}

std::string canonical(const spec::Stack& s) { return spec::render_json(spec::stack_json(s)); }

}  // namespace

TEST_CASE("mesh services: ingress ports of services joined to the ingress network, and no others") {
  auto stack = load(R"(name: shop
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
  plain:
    image: busybox
    ports: ["6001:61"]
  hosted:
    image: busybox
    network_mode: host
    ports: ["6002:62"]
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
  // Before attach_ingress (a project written by a daemon without it): nothing is meshed.
  std::vector<std::string> not_meshed;
  CHECK(reconciler::mesh_services(canonical(stack), &not_meshed).empty());
  CHECK(not_meshed.size() == 4);

  auto meshed = reconciler::attach_ingress(stack);
  REQUIRE_MESSAGE(meshed, meshed.error().message);
  auto ephemeral = *meshed;
  ephemeral.erase(std::remove_if(ephemeral.begin(), ephemeral.end(),
                                 [](const auto& p) { return p.want.fixed != 0; }),
                  ephemeral.end());
  REQUIRE(ephemeral.size() == 1);  // web's "82", numbered by the cluster at up
  CHECK(meshed->size() == 7);      // 8080, 9000, 9001, 53/udp, 82, 6000, 6001
  not_meshed.clear();
  auto services = reconciler::mesh_services(canonical(stack), &not_meshed);
  REQUIRE(services.size() == 3);
  using P = reconciler::MeshService::Port;
  CHECK(services[0].service == "local");
  CHECK(services[0].ports == std::vector<P>{{0, 6000, 60}});
  CHECK(services[1].service == "plain");  // on the default network only
  CHECK(services[1].ports == std::vector<P>{{0, 6001, 61}});
  const auto& web = services[2];
  CHECK(web.project == "shop");
  CHECK(web.service == "web");
  for (const auto& s : services) CHECK(s.network == "ingress");
  std::vector<P> want = {{1, 53, 53}, {0, 8080, 80}, {0, 9000, 90}, {0, 9001, 90}};  // canonical order
  CHECK(web.ports == want);
  CHECK(not_meshed == std::vector<std::string>{"shop/hosted"});

  // The cluster's number for "82": meshed from then on.
  reconciler::set_ephemeral_ports(stack, *meshed, {{ephemeral[0].want.owner, 30000}});
  services = reconciler::mesh_services(canonical(stack));
  REQUIRE(services.size() == 3);
  CHECK(std::count(services[2].ports.begin(), services[2].ports.end(), P{0, 30000, 82}) == 1);
  CHECK(reconciler::mesh_services("not json").empty());
}
