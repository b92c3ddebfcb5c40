// Applying the firewall model, and living with Docker: when Docker's `ip filter FORWARD` drops
// by policy, each instance inserts accepts for stack's bridges there, tagged with its table name
// (a drop in any base chain is final, so accepts in stack's own table cannot help), and removes
// its own when its last network goes: another instance's stay while it has networks.
#include "net/firewall.h"

#include <spdlog/spdlog.h>

#include <sstream>

#include "common/log.h"
#include "net/check.h"

namespace stack::net {
namespace {

// A missing table or chain is not an error for observe_*.
bool is_missing(const Error& e) { return e.sys_errno == ENOENT; }

// Handles of the lines of LISTING (printed with handles) that are exactly RULE.
std::vector<std::string> handles_of(const std::string& listing, const std::string& rule) {
  std::vector<std::string> out;
  std::istringstream in(listing);
  std::string line;
  const std::string marker = " # handle ";
  while (std::getline(in, line)) {
    auto start = line.find_first_not_of("\t ");
    auto at = line.find(marker);
    if (start == std::string::npos || at == std::string::npos) continue;
    if (line.substr(start, at - start) == rule) out.push_back(line.substr(at + marker.size()));
  }
  return out;
}

}  // namespace

Result<DockerForward> Firewall::observe_docker_forward() {
  DockerForward out;
  auto forward = nft_.run("list chain ip filter FORWARD");
  if (!forward) {
    if (is_missing(forward.error())) return out;
    return fail(forward.error().wrap("observe ip filter FORWARD"));
  }
  out.forward_drop = forward->find("policy drop;") != std::string::npos;
  auto user = nft_.run("list chain ip filter DOCKER-USER");
  if (!user && !is_missing(user.error()))
    return fail(user.error().wrap("observe ip filter DOCKER-USER"));
  out.chain = user ? "DOCKER-USER" : "FORWARD";
  // Without br_netfilter loaded the sysctl does not exist: bridged frames skip iptables.
  auto nf = kernel_.get_sysctl("net/bridge/bridge-nf-call-iptables");
  out.br_netfilter = nf && *nf == "1";
  return out;
}

Result<void> Firewall::ensure_docker_accepts(bool wanted, std::string_view tag) {
  auto docker = STACK_TRY_CTX(observe_docker_forward(), "docker forward chain");
  if (!docker.forward_drop) return {};
  auto listing =
      STACK_TRY_CTX(nft_.run("list chain ip filter " + docker.chain, true), "docker forward chain");
  std::string batch;
  for (const auto& rule : docker_accept_rules(tag)) {
    auto handles = handles_of(listing, rule);
    if (wanted && handles.empty())
      batch += "insert rule ip filter " + docker.chain + " " + rule + "\n";
    if (!wanted)
      for (const auto& h : handles)
        batch += "delete rule ip filter " + docker.chain + " handle " + h + "\n";
  }
  if (batch.empty()) return {};
  NET_CHECK(nft_.run(batch), "docker forward chain " + docker.chain);
  auto log = log::get("net");
  if (wanted)
    log->info(
        "docker host: ip filter {} drops forwarded traffic{}; inserted accepts for stk-* bridges "
        "tagged {}",
        docker.chain, docker.br_netfilter ? " (bridged too: br_netfilter is on)" : "", tag);
  else
    log->info("docker host: removed the accepts tagged {} from ip filter {}", tag, docker.chain);
  return {};
}

Result<void> Firewall::apply(const FirewallModel& model) {
  auto batch = STACK_TRY_CTX(render_transaction(model), "apply firewall");
  NET_CHECK(nft_.run(batch), "apply firewall");
  NET_CHECK(ensure_docker_accepts(!model.networks.empty(), model.table), "apply firewall");
  return {};
}

Result<std::string> Firewall::observe_table(std::string_view table) {
  auto r = nft_.run("list table ip " + std::string(table));
  if (!r && is_missing(r.error())) return std::string();
  if (!r) return fail(r.error().wrap("observe table ip " + std::string(table)));
  return r;
}

}  // namespace stack::net
