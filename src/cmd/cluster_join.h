// `stackd --cluster`: what the daemon's main needs to join a cluster, resolved from its flags
// (node name, advertised address, etcd URLs and TLS files) before it serves. Part of stackd.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace stack::cluster {
class NodeAgent;
}

namespace stack::cmd {

struct ClusterFlags {
  std::vector<std::string> urls;  // checked by parse_cluster_urls
  std::string node_name;          // "": the hostname
  std::string advertise;          // "": the default route's source address
  std::string ca, cert, key;
};

// The agent of this node, registered once already: an error when the name is held by another
// daemon, when no name or address can be found, or the TLS files cannot be read. An
// unreachable etcd is not an error: the agent keeps trying in the background once started.
// STATE_DIR keeps this daemon's id (which lets a restarted daemon take its name back at once).
[[nodiscard]] Result<std::unique_ptr<cluster::NodeAgent>> join_cluster(
    const ClusterFlags& flags, const std::filesystem::path& state_dir);

}  // namespace stack::cmd
