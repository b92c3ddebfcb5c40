// What the state store keeps of a created container so it can be started again, stopped and
// entered without its stack file: the engine spec plus how to stop it. Serialised as JSON in
// ContainerRecord::runtime_json. Private to the reconciler.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "common/result.h"
#include "engine/container.h"
#include "reconciler/health.h"

namespace stack::reconciler {

// How a container joins networks, from its service: kept with the container so that a start
// (and a daemon restart) needs no stack file.
struct NetworkJoin {
  std::string network;  // full name, "demo_default"
  std::vector<std::string> aliases;
  std::string ipv4_address;  // static, or ""
};
struct PublishedPort {
  std::string host_ip;  // "" for every local address
  int host_port = 0;
  int host_port_end = 0;  // 0: one port
  std::string protocol = "tcp";
  int container_port = 0;
};

struct RuntimeRecord {
  engine::ContainerSpec spec;
  int stop_signal = 15;
  std::chrono::milliseconds stop_grace{10'000};
  std::string user;  // as written in the stack file, for `exec --user` defaults
  std::string restart = "no";  // the restart policy, as written
  HealthConfig health;         // empty argv: no health check
  bool restart_on_unhealthy = true;  // x-stack: {restart_on_unhealthy: false} opts out
  std::map<std::string, std::string> fields;  // the service's field hashes, for plan reasons
  std::string project, service;      // for DNS names
  std::string network_mode = "none";  // bridge (join NETWORKS), none, host, service
  std::string network_service;        // network_mode service:NAME: NAME
  std::vector<NetworkJoin> networks;  // in priority order: the first one's gateway is the DNS
  std::vector<PublishedPort> ports;
  std::vector<std::string> dns_search, dns_opt;  // into the container's resolv.conf
};

std::string to_json(const RuntimeRecord& r);
[[nodiscard]] Result<RuntimeRecord> runtime_from_json(const std::string& text);

}  // namespace stack::reconciler
