// See image_transfer.h. What can be refused is refused before the upgrade (a JSON error: a
// "path", no reference, an image that does not exist, a size over the limit). Then a thread of
// its own per transfer speaks the frames on its copy of the socket and runs the store's work,
// so neither the loop nor the image workers wait for a slow client (its socket timeouts bound
// one that stalls); the tar goes straight into a blob of the store, a frame at a time.
#include "api/image_transfer.h"

#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>


#include "api/exec_stream.h"
#include "api/frame_socket.h"
#include "api/image_routes.h"
#include "common/files.h"
#include "common/log.h"
#include "fs/image_store.h"
#include "reconciler/daemon.h"
#include "reconciler/images.h"

namespace stack::api {

namespace asio = boost::asio;
using nlohmann::json;
using reconciler::awaitable;
using reconciler::Daemon;

namespace {

struct Job {
  enum class Kind { import, load, save } kind = Kind::import;
  fs::ImageStore* store = nullptr;
  std::string reference;                // import
  std::vector<std::string> references;  // save
  uint64_t size = 0;                    // import, load: announced by the client; 0 unknown
  fs::ImportOptions options;
};

// DATA in frames of TYPE (at least one, at most kChunk bytes each).
bool send_frame(int sock, exec::Type type, std::string_view data) {
  do {
    auto piece = data.substr(0, exec::kChunk);
    if (!send_all(sock, exec::encode(type, piece))) return false;
    data.remove_prefix(piece.size());
  } while (!data.empty());
  return true;
}

// Runs JOB over the upgraded socket: returns the result frame's JSON (null for save), or the
// operation's error; SOCK_BROKEN when the client went away.
Result<json> transfer(Job& job, int sock, std::string after, bool& sock_broken) {
  job.options.progress = [&](std::string_view phase, uint64_t done, uint64_t total) {
    if (sock_broken) return;
    json line = {{"progress", {{"phase", phase}, {"bytes", done}, {"total", total}}}};
    if (!send_frame(sock, exec::Type::stderr_data, line.dump() + "\n")) sock_broken = true;
  };
  if (job.kind == Job::Kind::save) {
    auto sink = [&](std::string_view data) -> Result<void> {
      if (!send_frame(sock, exec::Type::stdout_data, data)) {
        sock_broken = true;
        return fail("the client is gone");
      }
      return {};
    };
    if (auto r = job.store->save_stream(job.references, sink, job.options); !r)
      return fail(r.error());
    return json();
  }
  FrameSource source(sock, std::move(after));
  auto read = [&](char* buf, size_t n) { return source.read(buf, n); };
  if (job.kind == Job::Kind::import) {
    auto img = job.store->import_stream(job.reference, read, job.size, job.options);
    if (!img) return fail(img.error());
    return json{{"imported", fs::familiar_reference(img->reference) + " " + img->id},
                {"image", image_json(*img)}};
  }
  auto images = job.store->load_stream(read, job.size, job.options);
  if (!images) return fail(images.error());
  json loaded = json::array();
  for (const auto& i : *images) loaded.push_back(image_json(i));
  return json{{"loaded", loaded}};
}

void serve(Job& job, int sock, std::string after) {
  bool sock_broken = false;
  auto result = transfer(job, sock, std::move(after), sock_broken);
  if (sock_broken) return;
  if (result) {
    if (!result->is_null() && !send_frame(sock, exec::Type::stdout_data, result->dump())) return;
    send_all(sock, exec::encode_exit(0));
  } else {
    log::get("api")->info("image transfer failed: {}", result.error().message);
    // The client may still be sending: it reads this frame once its send fails (a Unix
    // socket keeps what was queued for it when this end closes).
    send_all(sock, exec::encode(exec::Type::error, result.error().message));
  }
  ::shutdown(sock, SHUT_RDWR);
}

// A non-negative integer field of BODY, or DEF when absent.
Result<uint64_t> size_field(const json& body, const char* key, uint64_t def) {
  if (!body.contains(key) || body[key].is_null()) return def;
  if (!body[key].is_number_unsigned()) return fail(std::string(key) + " must be a number of bytes");
  return body[key].get<uint64_t>();
}

}  // namespace

bool is_image_transfer(const Request& request, const Target& t) {
  const auto& p = t.path;
  return request.method == "POST" && p.size() == 3 && p[1] == "images" &&
         (p[2] == "import" || p[2] == "load" || p[2] == "save");
}

awaitable<Reply> image_transfer(Daemon& d, const Request& req, const Target& t, const json& body) {
  const std::string& what = t.path[2];
  // The same refusal whatever the path names: an answer that differed for /etc/shadow and for a
  // file that does not exist would tell a caller which host files exist.
  if (body.contains("path"))
    co_return error_reply(400, what + ": \"path\" is not accepted: the daemon opens no host file "
                                       "a request names; the client streams the tar (Upgrade: " +
                                   std::string(kImageUpgrade) + ", api/image_transfer.h)");
  if (req.upgrade != kImageUpgrade)
    co_return error_reply(400, what + " streams the tar over an upgraded connection: send "
                                      "Connection: Upgrade and Upgrade: " +
                                   std::string(kImageUpgrade));
  auto job = std::make_shared<Job>();
  job->store = &d.images().store();
  auto size = size_field(body, "size", 0);
  auto max = size_field(body, "max_bytes", fs::kDefaultMaxImportBytes);
  if (!size) co_return error_reply(400, what + ": " + size.error().message);
  if (!max || *max == 0)
    co_return error_reply(400, "max_bytes must be a positive number of bytes");
  job->size = *size;
  job->options.max_bytes = *max;
  if (job->size > job->options.max_bytes)
    co_return error_reply(413, what + ": the tar is " + format_size(job->size) +
                                   ", larger than the import limit of " +
                                   format_size(job->options.max_bytes));
  if (what == "import") {
    job->kind = Job::Kind::import;
    if (!body.contains("reference") || !body["reference"].is_string() ||
        body["reference"].get<std::string>().empty())
      co_return error_reply(400, "import: no reference");
    job->reference = body["reference"].get<std::string>();
    if (auto r = fs::normalize_reference(job->reference); !r)
      co_return error_reply(400, r.error().wrap("import").message);
  } else if (what == "load") {
    job->kind = Job::Kind::load;
  } else {
    job->kind = Job::Kind::save;
    if (!body.contains("references") || !body["references"].is_array() ||
        body["references"].empty())
      co_return error_reply(400, "save: no image named (references)");
    for (const auto& r : body["references"]) {
      if (!r.is_string()) co_return error_reply(400, "save: references are strings");
      auto img = d.images().get(r.get<std::string>());
      if (!img) co_return error_reply(404, img.error().wrap("save").message);
      job->references.push_back(r.get<std::string>());
    }
  }
  log::get("api")->info("image {} streamed{}", what,
                        job->reference.empty() ? "" : " ref=" + job->reference);
  Reply reply{101, {}, {}};
  reply.takeover = [job](int fd, std::string after) {
    return serve_upgraded(fd, std::move(after), std::string(kImageUpgrade),
                          [job](int sock, std::string rest) {
                            serve(*job, sock, std::move(rest));
                          });
  };
  co_return reply;
}

}  // namespace stack::api
