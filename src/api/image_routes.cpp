// The image routes: JSON in, ImageService calls, JSON out. Long operations (pull, push) stream
// their progress as JSON lines and end with one result line or {"error": ...}. Import, load and
// save stream a tar over an upgraded connection: api/image_transfer.h.
//   GET    /v1/images                  every reference (and untagged image)
//   GET    /v1/images/inspect?ref=R    one image: config, layers, size, digest, tags, created
//   POST   /v1/images/pull             {reference, platform, credentials}: {"pull": event}...
//                                      {"pulled": image}
//   POST   /v1/images/push             {reference, credentials}: {"push": event}... {"pushed":
//                                      {reference, digest, size, layers, existed}}
//   POST   /v1/images/tag              {source, target}
//   POST   /v1/images/prune            {all}
//   DELETE /v1/images/REF[?force=1]    {"untagged": [...], "deleted": [...]}
//   POST   /v1/auth                    {registry, username, password}: checked against it
#include "api/image_routes.h"

#include <boost/asio/this_coro.hpp>
#include <nlohmann/json.hpp>

#include "fs/oci_layout.h"
#include "reconciler/async.h"
#include "reconciler/daemon.h"
#include "reconciler/images.h"

namespace stack::api {

namespace {

using nlohmann::json;
using reconciler::awaitable;
using reconciler::Daemon;

std::string time_of(int64_t unix_seconds) {
  return unix_seconds > 0 ? fs::format_rfc3339(unix_seconds) : std::string();
}

// A reference's repository and tag, as `docker images` shows them.
std::pair<std::string, std::string> repository_tag(const std::string& canonical) {
  if (canonical.empty()) return {"<none>", "<none>"};
  std::string familiar = fs::familiar_reference(canonical);
  if (size_t at = familiar.find('@'); at != std::string::npos)
    return {familiar.substr(0, at), "<none>"};
  size_t colon = familiar.rfind(':');
  return {familiar.substr(0, colon), familiar.substr(colon + 1)};
}

json removal_json(const fs::Removal& r) {
  json untagged = json::array();
  for (const auto& u : r.untagged) untagged.push_back(fs::familiar_reference(u));
  return {{"untagged", untagged}, {"deleted", r.deleted}, {"reclaimed", r.reclaimed}};
}

json event_json(const fs::PullEvent& e) {
  static const char* kinds[] = {"resolving", "resolved", "layer", "done"};
  json j = {{"kind", kinds[static_cast<int>(e.kind)]},
            {"reference", fs::familiar_reference(e.reference)}};
  if (!e.digest.empty()) j["digest"] = e.digest;
  if (e.kind == fs::PullEvent::Kind::resolved) j["layers"] = e.layers;
  if (e.kind == fs::PullEvent::Kind::layer) {
    j["id"] = e.id;
    j["status"] = e.status;
    j["current"] = e.current;
    j["total"] = e.total;
    if (!e.message.empty()) j["message"] = e.message;
  }
  return j;
}

// The credential a pull or push request carries for its registry: {"username", "password"} or
// {"identity_token"}; none without one: then the pull or push is anonymous. The daemon's own
// auth file is never used for a client (a member of the socket's group would pull a private
// image with root's login); it serves the daemon's own pulls. The CLI reads
// its user's auth file and sends only this: a path in a request is refused, never opened (the
// daemon is root; a member of the socket's group could name any file root can read).
Result<std::optional<fs::Credentials>> credentials_of(const json& body, const std::string& what) {
  if (body.contains("auth_file"))
    return fail(what + ": auth_file is not accepted: the daemon opens no file a request names "
                "(send \"credentials\": {\"username\", \"password\"} or {\"identity_token\"})");
  if (!body.contains("credentials") || body["credentials"].is_null())
    return std::optional<fs::Credentials>{};
  const json& c = body["credentials"];
  if (!c.is_object()) return fail(what + ": credentials must be an object");
  fs::Credentials out;
  for (const auto& [key, value] : c.items()) {
    if (!value.is_string()) return fail(what + ": credentials." + key + " must be a string");
    if (key == "username")
      out.username = value.get<std::string>();
    else if (key == "password")
      out.password = value.get<std::string>();
    else if (key == "identity_token")
      out.identity_token = value.get<std::string>();
    else
      return fail(what + ": unknown credentials field " + key +
                  " (username, password, identity_token)");
  }
  if (out.username.empty() && out.identity_token.empty())
    return fail(what + ": credentials need a username or an identity_token");
  return std::optional<fs::Credentials>{out};
}

Reply pull_reply(Daemon& d, const json& body) {
  fs::PullRequest req;
  req.reference = body.value("reference", "");
  if (req.reference.empty()) return error_reply(400, "pull: no reference");
  if (body.contains("platform") && !body["platform"].get<std::string>().empty())
    req.platform = body["platform"].get<std::string>();
  auto creds = credentials_of(body, "pull");
  if (!creds) return error_reply(400, creds.error().message);
  req.credentials = *creds;
  req.auth_file.clear();
  return {200, {}, [&d, req](Emit emit, Cancelled) -> awaitable<void> {
            fs::PullRequest r = req;
            r.progress = [emit](const fs::PullEvent& e) { emit({{"pull", event_json(e)}}); };
            auto image = co_await d.images().pull(std::move(r));
            if (!image)
              emit({{"error", image.error().message}});
            else
              emit({{"pulled", image_json(*image)}});
          }};
}

Reply push_reply(Daemon& d, const json& body) {
  fs::PushRequest req;
  req.reference = body.value("reference", "");
  if (req.reference.empty()) return error_reply(400, "push: no reference");
  auto creds = credentials_of(body, "push");
  if (!creds) return error_reply(400, creds.error().message);
  req.credentials = *creds;
  req.auth_file.clear();
  return {200, {}, [&d, req](Emit emit, Cancelled) -> awaitable<void> {
            fs::PushRequest r = req;
            r.progress = [emit](const fs::PullEvent& e) { emit({{"push", event_json(e)}}); };
            auto pushed = co_await d.images().push(std::move(r));
            if (!pushed)
              emit({{"error", pushed.error().message}});
            else
              emit({{"pushed",
                     {{"reference", fs::familiar_reference(pushed->reference)},
                      {"digest", pushed->digest},
                      {"size", pushed->size},
                      {"layers", pushed->layers},
                      {"existed", pushed->existed}}}});
          }};
}

}  // namespace

Result<std::shared_ptr<const RegistryAuths>> registry_auth_of(const json& body) {
  auto out = std::make_shared<RegistryAuths>();
  if (!body.contains("registry_auth") || body["registry_auth"].is_null()) return out;
  const json& all = body["registry_auth"];
  if (!all.is_object()) return fail("registry_auth must be an object of registries");
  for (const auto& [registry, c] : all.items()) {
    auto creds = credentials_of(json{{"credentials", c}}, "registry_auth." + registry);
    if (!creds) return fail(creds.error());
    if (*creds) (*out)[registry_of_key(registry)] = **creds;
  }
  return out;
}

nlohmann::json image_json(const fs::Image& i) {
  const auto& c = i.config;
  json config = {{"Env", c.env},
                 {"Entrypoint", c.entrypoint},
                 {"Cmd", c.cmd},
                 {"WorkingDir", c.working_dir},
                 {"User", c.user},
                 {"StopSignal", c.stop_signal},
                 {"ExposedPorts", c.exposed_ports},
                 {"Volumes", c.volumes},
                 {"Labels", c.labels}};
  if (c.healthcheck)
    config["Healthcheck"] = {{"Test", c.healthcheck->test},
                             {"Interval", c.healthcheck->interval_ns},
                             {"Timeout", c.healthcheck->timeout_ns},
                             {"StartPeriod", c.healthcheck->start_period_ns},
                             {"StartInterval", c.healthcheck->start_interval_ns},
                             {"Retries", c.healthcheck->retries}};
  else
    config["Healthcheck"] = nullptr;
  json tags = json::array();
  for (const auto& t : i.tags) tags.push_back(fs::familiar_reference(t));
  auto [repository, tag] = repository_tag(i.reference);
  return {{"reference", i.reference.empty() ? "" : fs::familiar_reference(i.reference)},
          {"canonical", i.reference},
          {"repository", repository},
          {"tag", tag},
          {"tags", tags},
          {"id", i.id},
          {"digest", i.manifest_digest},
          {"repo_digests", i.repo_digest.empty() ? json::array() : json::array({i.repo_digest})},
          {"size", i.size},
          {"created", time_of(i.created)},
          {"pulled_at", time_of(i.pulled_at)},
          {"os", i.os},
          {"architecture", i.architecture},
          {"variant", i.variant},
          {"layers", i.diff_ids},
          {"config", config}};
}

bool is_image_route(const Target& t) {
  const auto& p = t.path;
  return p.size() >= 2 && p[0] == "v1" && (p[1] == "images" || (p[1] == "auth" && p.size() == 2));
}

awaitable<Reply> image_route(Daemon& d, const Request& req, const Target& t, const json& body) {
  const auto& p = t.path;
  const auto& m = req.method;
  auto& images = d.images();
  try {
    if (p.size() == 2 && p[1] == "auth") {
      fs::Credentials c{body.value("username", ""), body.value("password", ""), ""};
      std::string registry = body.value("registry", "docker.io");
      auto r = co_await images.login(registry, c);
      if (!r) co_return error_reply(401, r.error().message);
      co_return Reply{200, {{"ok", true}, {"registry", registry}}, {}};
    }
    if (p.size() == 2) {
      auto list = images.list();
      if (!list) co_return error_reply(500, list.error().message);
      json arr = json::array();
      for (const auto& i : *list) arr.push_back(image_json(i));
      co_return Reply{200, arr, {}};
    }
    const std::string& what = p[2];
    if (m == "DELETE") {
      auto r = co_await images.remove(what, t.flag("force"));
      if (!r)
        co_return error_reply(r.error().message.find("not found") != std::string::npos ? 404 : 409,
                              r.error().message);
      co_return Reply{200, removal_json(*r), {}};
    }
    if (m == "GET" && what == "inspect") {
      auto img = images.get(t.get("ref"));
      if (!img) co_return error_reply(404, img.error().message);
      co_return Reply{200, image_json(*img), {}};
    }
    {  // POST: allowed_methods let nothing else through
      if (what == "pull") co_return pull_reply(d, body);
      if (what == "push") co_return push_reply(d, body);
      if (what == "tag") {
        auto r = images.tag(body.value("source", ""), body.value("target", ""));
        if (!r) co_return error_reply(400, r.error().message);
        co_return Reply{200, image_json(*r), {}};
      }
      if (what == "prune") {
        auto r = co_await images.prune(body.value("all", false));
        if (!r) co_return error_reply(500, r.error().message);
        co_return Reply{200, removal_json(*r), {}};
      }
    }
    co_return error_reply(404, "unknown API path " + m + " " + req.target);
  } catch (const std::exception& e) {  // malformed JSON types in a request
    co_return error_reply(400, std::string("bad request: ") + e.what());
  }
}

}  // namespace stack::api
