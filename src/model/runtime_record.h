// What the state store keeps of a created container so it can be started again, stopped and
// entered without its stack file: the engine's container spec plus how to stop, supervise and
// connect it. Built once by the reconciler from a service, carried by the plan's CreateContainer
// step, stored (sealed) by the state store. Plain data.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/container.h"

namespace stack::model {

// A health check as the supervisor runs it.
struct HealthConfig {
  std::vector<std::string> argv;  // CMD as given; CMD-SHELL becomes /bin/sh -c
  std::chrono::milliseconds interval{30'000};
  std::chrono::milliseconds timeout{30'000};
  std::chrono::milliseconds start_period{0};
  std::chrono::milliseconds start_interval{5'000};
  int retries = 3;
  [[nodiscard]] bool enabled() const { return !argv.empty(); }
};

// How a container joins networks, from its service: kept with the container so that a start
// (and a daemon restart) needs no stack file.
struct NetworkJoin {
  std::string network;  // full name, "demo_default"
  std::vector<std::string> aliases;
  std::string ipv4_address;  // static, or ""
  std::string config_hash;   // the network's definition when the container joined it
  std::string mac_address = "";     // "" : derived from the address
  std::string interface_name = "";  // "" : eth<N>
  int gw_priority = 0;              // the default route goes through the highest
  std::string ipv6_address = "";    // static, on a network with enable_ipv6; or ""
  std::vector<std::string> link_local_ips = {};  // extra addresses on this interface
};
struct PublishedPort {
  std::string host_ip;  // "" for every local address
  int host_port = 0;
  int host_port_end = 0;  // 0: one port
  std::string protocol = "tcp";
  int container_port = 0;
};

struct RuntimeRecord {
  ContainerSpec spec;
  std::string config_hash;  // of the service it was made from
  std::string image;        // the reference as written
  std::string image_id;     // sha256:... of the image config it was made from
  int stop_signal = 15;
  std::chrono::milliseconds stop_grace{10'000};
  std::string user;  // as written in the stack file, for `exec --user` defaults
  std::string restart = "no";  // the restart policy, as written
  // deploy.restart_policy delay and window; 0: stack's backoff (restart_policy.h).
  std::chrono::milliseconds restart_delay{0}, restart_window{0};
  std::map<std::string, std::string> labels;  // labels, label_file, deploy.labels
  std::map<std::string, std::string> annotations;  // annotations (docker's HostConfig.Annotations)
  // The labels of the anonymous volumes made for it (a mount's volume.labels), by target.
  std::map<std::string, std::map<std::string, std::string>> volume_labels;
  // logging.driver and its options: syslog and journald get each line besides the local
  // copy the init writes (reconciler/log_shipper.h).
  std::string log_driver = "json-file";
  std::map<std::string, std::string> log_options;
  HealthConfig health;         // empty argv: no health check
  bool restart_on_unhealthy = true;  // x-stack: {restart_on_unhealthy: false} opts out
  bool auto_remove = false;  // `run -d --rm`: the supervisor removes it once it has exited
  std::map<std::string, std::string> fields;  // the service's field hashes, for plan reasons
  std::string project, service;      // for DNS names
  std::string network_mode = "none";  // bridge (join NETWORKS), none, host, service, container
  // The service whose first replica's namespaces this container joins at each start (the
  // planner orders and recreates by it): network_mode service:NAME (network_mode "service"),
  // pid: service:NAME (JOIN_PID), ipc: service:NAME (JOIN_IPC). One service for all three.
  std::string network_service;
  bool join_pid = false, join_ipc = false;
  // network_mode, pid or ipc container:NAME (NETWORK_MODE "container", JOIN_PID, JOIN_IPC): a
  // container of the host by name (any project), joined at each start; it must be running then.
  std::string join_container;
  std::vector<NetworkJoin> networks;  // in priority order: the first one's gateway is the DNS
  std::vector<PublishedPort> ports;
  std::vector<std::string> dns_search, dns_opt;  // into the container's resolv.conf
  std::vector<std::string> dns;  // upstream servers of its other queries ("" : the host's)
  std::map<std::string, std::string> links;  // links, external_links: alias -> service/container
  // Secrets and configs (issue 13), written before the container is made and bound read-only
  // by SPEC.mounts. SECRET_CONTENTS (same order) is read from their sources for each pass and
  // never persisted: the record in the state database holds where, whose and which mode only.
  std::vector<SecretFile> secret_files;
  // post_start and pre_stop hooks, resolved against the image (user, environment, cwd) when
  // the container is built; each runs inside the running container as `exec` does.
  std::vector<ProcessSpec> post_start, pre_stop;
  std::shared_ptr<const std::vector<std::string>> secret_contents;
};

}  // namespace stack::model
