// The shapes of the Compose fields stack keeps generically: service keys without a typed
// field, the parts of `deploy` and `build` the engine does not read, and top-level `models`.
// Adding a Compose field: one line here (or a typed normaliser in service.cpp).
#include "spec/shape.h"

namespace stack::spec {
namespace {

using namespace shapes;

Shape hook() {
  return object({{"command", either({str(), list(str())})},
                 {"user", str()},
                 {"privileged", boolean()},
                 {"working_dir", str()},
                 {"environment", dict()}},
                {"command"});
}

Shape device_request() {
  return object({{"capabilities", list(str())},
                 {"count", scalar()},
                 {"device_ids", list(str())},
                 {"driver", str()},
                 {"options", dict()}});
}

Shape blkio_rate() { return list(object({{"path", str()}, {"rate", scalar()}})); }

Shape update_config() {
  return object({{"parallelism", integer()},
                 {"delay", duration()},
                 {"failure_action", str()},
                 {"monitor", duration()},
                 {"max_failure_ratio", num()},
                 {"order", str({"start-first", "stop-first"})}});
}

}  // namespace

const std::map<std::string, Shape>& generic_service_fields() {
  static const std::map<std::string, Shape> table = {
      {"annotations", dict()},
      {"attach", boolean()},
      {"blkio_config",
       object({{"device_read_bps", blkio_rate()},
               {"device_read_iops", blkio_rate()},
               {"device_write_bps", blkio_rate()},
               {"device_write_iops", blkio_rate()},
               {"weight", integer()},
               {"weight_device", list(object({{"path", str()}, {"weight", integer()}}))}})},
      {"cgroup", str({"host", "private"})},
      {"cgroup_parent", str()},
      {"cpu_count", integer()},
      {"cpu_percent", integer()},
      {"cpu_period", scalar()},
      {"cpu_quota", scalar()},
      {"cpu_rt_period", scalar()},
      {"cpu_rt_runtime", scalar()},
      {"cpuset", str()},
      {"credential_spec", object({{"config", str()}, {"file", str()}, {"registry", str()}})},
      {"develop",
       object({{"watch", list(object({{"path", str()},
                                      {"action", str({"rebuild", "sync", "restart",
                                                      "sync+restart", "sync+exec"})},
                                      {"target", str()},
                                      {"initial_sync", boolean()},
                                      {"ignore", strings()},
                                      {"include", strings()},
                                      {"exec", hook()}},
                                     {"path", "action"}))}})},
      {"device_cgroup_rules", list(str())},
      {"external_links", list(str())},
      {"gpus", either({str({"all"}), list(device_request())})},
      {"group_add", list(scalar())},
      {"ipc", str()},
      {"isolation", str()},
      {"label_file", strings()},
      {"mac_address", str()},
      {"mem_reservation", bytes()},
      {"mem_swappiness", integer()},
      {"memswap_limit", bytes()},
      {"models", either({list(str()), map(object({{"endpoint_var", str()}}))})},
      {"oom_kill_disable", boolean()},
      {"oom_score_adj", integer()},
      {"pid", str()},
      {"platform", str()},
      {"post_start", list(hook())},
      {"pre_stop", list(hook())},
      {"provider", object({{"type", str()}, {"options", map(any())}}, {"type"})},
      {"pull_refresh_after", str()},
      {"runtime", str()},
      {"security_opt", list(str())},
      {"shm_size", bytes()},
      {"storage_opt", map(any())},
      {"use_api_socket", boolean()},
      {"userns_mode", str()},
      {"uts", str()},
      {"volumes_from", list(str())},
  };
  return table;
}

const Shape& deploy_shape() {
  static const Shape shape = object({
      {"mode", str()},
      {"endpoint_mode", str()},
      {"replicas", integer()},
      {"labels", dict()},
      {"rollback_config", update_config()},
      {"update_config", update_config()},
      {"resources",
       object({{"limits", object({{"cpus", num()}, {"memory", bytes()}, {"pids", integer()}})},
               {"reservations",
                object({{"cpus", num()},
                        {"memory", bytes()},
                        {"generic_resources",
                         list(object({{"discrete_resource_spec",
                                       object({{"kind", str()}, {"value", scalar()}})}}))},
                        {"devices", list(device_request())}})}})},
      {"restart_policy", object({{"condition", str({"none", "on-failure", "any"})},
                                 {"delay", duration()},
                                 {"max_attempts", integer()},
                                 {"window", duration()}})},
      {"placement", object({{"constraints", list(str())},
                            {"preferences", list(object({{"spread", str()}}))},
                            {"max_replicas_per_node", integer()}})},
  });
  return shape;
}

const Shape& build_shape() {
  static const Shape shape = object({
      {"context", str()},
      {"dockerfile", str()},
      {"dockerfile_inline", str()},
      {"entitlements", list(str())},
      {"args", dict()},
      {"ssh", either({strings(), dict()})},
      {"labels", dict()},
      {"cache_from", list(str())},
      {"cache_to", list(str())},
      {"no_cache", boolean()},
      {"additional_contexts", dict()},
      {"network", str()},
      {"pull", boolean()},
      {"target", str()},
      {"shm_size", bytes()},
      {"extra_hosts", any()},
      {"isolation", str()},
      {"privileged", boolean()},
      {"secrets", any()},
      {"tags", list(str())},
      {"ulimits", any()},
      {"platforms", list(str())},
  });
  return shape;
}

const Shape& model_shape() {
  static const Shape shape = object({{"name", str()},
                                     {"model", str()},
                                     {"context_size", integer()},
                                     {"runtime_flags", list(str())}},
                                    {"model"});
  return shape;
}

}  // namespace stack::spec
