// `stack cp [-a] [--index N] SERVICE:SRC DEST|-` and `stack cp [-a] SRC|- SERVICE:DEST`, as
// docker compose cp: a tar stream through the daemon (POST /v1/projects/P/cp, upgraded; the
// daemon resolves the container's side inside its root, src/api/copy_routes.h). This end packs
// or unpacks the host's side with the CLI user's own rights; an archive from the container is
// unpacked with every name resolved inside the destination (it cannot write elsewhere).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "api/exec_stream.h"
#include "cli/cli.h"
#include "cli/frame_stream.h"
#include "cli/service_io.h"
#include "common/tree_copy.h"

namespace stack::cli {

namespace {

using nlohmann::json;
namespace frames = api::exec;

constexpr std::string_view kUpgrade = "stack-cp";  // src/api/copy_routes.h

struct CpFlags {
  bool archive = false, follow = false;
  int index = 1;
  std::string source, dest;
};

// "web:/etc/hosts" -> ("web", "/etc/hosts"); a host path ("./a:b", "/x:y", "-") -> nullopt.
std::optional<std::pair<std::string, std::string>> container_side(const std::string& arg) {
  size_t colon = arg.find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string service = arg.substr(0, colon);
  if (service.find('/') != std::string::npos || service.front() == '.') return std::nullopt;
  return std::make_pair(service, arg.substr(colon + 1));
}

// The daemon's frames on the upgraded socket, and its data frames as a byte stream.
class Stream {
 public:
  Stream(int sock, std::string pending) : frames_(sock, std::move(pending), "cp: ") {}
  Result<frames::Frame> next() { return frames_.next(); }
  // Data frames' payloads as one byte stream, for the tar reader; the end of the copy (exit 0)
  // is its end; the daemon's error frame is its error.
  Result<size_t> read(char* buf, size_t n) {
    while (offset_ == data_.size()) {
      if (ended_) return size_t{0};
      auto f = next();
      if (!f) return fail(f.error());
      if (f->type == frames::Type::stdout_data) {
        data_ = std::move(f->payload);
        offset_ = 0;
      } else if (auto end = finish(*f); !end) {
        return fail(end.error());
      }
    }
    size_t k = std::min(n, data_.size() - offset_);
    std::memcpy(buf, data_.data() + offset_, k);
    offset_ += k;
    return k;
  }
  // Reads to the daemon's last frame: ok on exit 0, else its error.
  Result<void> wait_end() {
    while (!ended_) {
      auto f = next();
      if (!f) return fail(f.error());
      if (f->type == frames::Type::stdout_data) continue;  // the archive's tail padding
      if (auto end = finish(*f); !end) return end;
    }
    return {};
  }

 private:
  Result<void> finish(const frames::Frame& f) {
    ended_ = true;
    if (f.type == frames::Type::error) return fail(f.payload);
    if (f.type == frames::Type::exit) {
      auto code = frames::decode_exit(f.payload);
      if (code && *code == 0) return {};
      return fail("the copy failed");
    }
    return fail("cp: the daemon sent a frame of type " + std::to_string(static_cast<int>(f.type)));
  }

  DaemonFrames frames_;
  std::string data_;
  size_t offset_ = 0;
  bool ended_ = false;
};

Result<api::Upgraded> connect(const std::string& project, const json& body) {
  api::Response refused;
  auto up = daemon_client().upgrade("POST", "/v1/projects/" + url_encode(project) + "/cp",
                                    body.dump(), kUpgrade, refused);
  if (!up) return fail(up.error());
  if (!up->socket) {
    auto j = json::parse(refused.body, nullptr, false);
    return fail(j.is_object() && j.contains("error") && j["error"].is_string()
                    ? j["error"].get<std::string>()
                    : "the daemon answered " + std::to_string(refused.status));
  }
  return std::move(*up);
}

int copy_out(const std::string& project, const CpFlags& f, const std::string& service,
             const std::string& path) {
  copy::Destination where;
  UniqueFd dir;
  if (f.dest != "-") {  // checked before anything is asked of the daemon
    auto w = copy::destination({AT_FDCWD, false}, f.dest, copy::names_contents(path));
    if (!w) return report(w.error().wrap("cp"));
    dir = UniqueFd(::open(w->dir.empty() ? "." : w->dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return report(Error::from_errno("cp: open " + w->dir));
    where = *w;
    where.dir = ".";
  }
  json body = {{"service", service}, {"index", f.index}, {"direction", "out"}, {"path", path},
               {"follow", f.follow}};
  auto up = connect(project, body);
  if (!up) return report(up.error());
  Stream stream(up->socket.get(), std::move(up->pending));
  if (f.dest == "-") {
    for (;;) {
      auto fr = stream.next();
      if (!fr) return report(fr.error());
      if (fr->type == frames::Type::stdout_data) {
        for (std::string_view d = fr->payload; !d.empty();) {
          ssize_t n = ::write(1, d.data(), d.size());
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) return report(Error::from_errno("cp: write to stdout"));
          d.remove_prefix(static_cast<size_t>(n));
        }
        continue;
      }
      if (fr->type == frames::Type::exit) return 0;
      return report(Error{"cp: " + fr->payload});
    }
  }
  tar::Reader reader([&](char* buf, size_t n) { return stream.read(buf, n); });
  copy::UnpackOptions options;
  if (f.archive && ::geteuid() == 0) {  // only root can give files away
    options.uid = [](uint64_t id) -> std::optional<uint64_t> { return id; };
    options.gid = options.uid;
  }
  auto r = copy::unpack({dir.get(), true}, where, reader, options);
  if (!r) return report(r.error().wrap("cp"));
  if (auto end = stream.wait_end(); !end) return report(end.error().wrap("cp"));
  return 0;
}

// Sends SOURCE (a host path, or "-": a tar on stdin) as BODY asks; FOLLOW: SOURCE's target if
// it is a symlink, under its name (`cp -L`).
Result<void> send_in(const std::string& project, const json& body, const std::string& source,
                     bool follow = false) {
  bool from_stdin = source == "-";
  auto up = connect(project, body);
  if (!up) return fail(up.error());
  int sock = up->socket.get();
  Stream stream(sock, std::move(up->pending));
  auto sink = [&](std::string_view data) -> Result<void> {
    while (!data.empty()) {
      auto piece = data.substr(0, frames::kChunk);
      if (!send_all(sock, frames::encode(frames::Type::stdin_data, piece)))
        return fail("the daemon closed the stream");
      data.remove_prefix(piece.size());
    }
    return {};
  };
  Result<void> sent;
  if (from_stdin) {
    std::vector<char> buf(frames::kChunk);
    for (;;) {
      ssize_t n = ::read(0, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        sent = fail_errno("read stdin");
        break;
      }
      if (n == 0) break;
      if (sent = sink(std::string_view(buf.data(), static_cast<size_t>(n))); !sent) break;
    }
  } else {
    copy::PackOptions options;
    std::string at = source;
    if (follow && !copy::names_contents(source)) {
      auto followed = copy::follow_links({AT_FDCWD, false}, source);
      if (!followed) return fail(followed.error());
      at = *followed;
      options.name = source.substr(source.find_last_of('/') + 1);
    }
    sent = copy::pack({AT_FDCWD, false}, at, options, sink);
  }
  if (sent) send_all(sock, frames::encode(frames::Type::stdin_eof));
  // The daemon's answer says more than our own failure to send (it stopped reading).
  if (auto end = stream.wait_end(); !end) return end;
  return sent;
}

int copy_in(const std::string& project, const CpFlags& f, const std::string& service,
            const std::string& path) {
  bool from_stdin = f.source == "-";
  if (!from_stdin) {  // a missing source is said before anything is asked of the daemon
    struct stat st {};
    if (::lstat(f.source.c_str(), &st) != 0)
      return report(Error::from_errno("cp: " + f.source));
  }
  json body = {{"service", service},
               {"index", f.index},
               {"direction", "in"},
               {"path", path},
               {"contents", from_stdin || copy::names_contents(f.source)},
               {"archive", f.archive}};
  if (auto r = send_in(project, body, f.source, f.follow); !r)
    return report(r.error().wrap("cp"));
  return 0;
}

}  // namespace

Result<void> copy_into_service(const std::string& project, const std::string& service, int index,
                               const std::string& source, const std::string& dest) {
  bool contents = copy::names_contents(source);
  json body = {{"service", service}, {"index", index},       {"direction", "in"},
               {"path", dest},        {"contents", contents}, {"parents", true}};
  return send_in(project, body, source);
}

void add_cp_command(CLI::App& app) {
  auto* cp = app.add_subcommand("cp", "Copy files between a service's container and the host");
  static CpFlags flags;
  cp->add_flag("-a,--archive", flags.archive,
               "Keep the archive's owners (uid/gid); else files copied into the container "
               "belong to its user");
  cp->add_flag("-L,--follow-link", flags.follow,
               "Follow the source if it is a symlink (in the container: inside its root)");
  cp->add_option("--index", flags.index, "Which replica (default 1)");
  cp->add_option("source", flags.source, "SERVICE:SRC_PATH, a host path, or - (a tar on stdin)")
      ->required();
  cp->add_option("dest", flags.dest, "SERVICE:DEST_PATH, a host path, or - (a tar to stdout)")
      ->required();
  cp->footer(
      "Usage: stack cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n"
      "       stack cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH\n"
      "A path ending in /. copies a directory's contents; -L copies what a symlink source names.\n"
      "From a container that does not run (created, exited): its own filesystem, read-only\n"
      "(not its volumes or binds); into one: refused, start it first.");
  cp->callback([] {
    auto from = container_side(flags.source), to = container_side(flags.dest);
    if (from && to)
      throw CLI::ValidationError("cp", "copying between two containers is not supported");
    if (!from && !to)
      throw CLI::ValidationError("cp", "one of the paths must be SERVICE:PATH");
    const auto& side = from ? *from : *to;
    if (side.second.empty() || side.second.front() != '/')
      throw CLI::ValidationError("cp", "the container's path must be absolute: " + side.second);
    auto project = value_or_exit(project_name());
    throw ExitCode{from ? copy_out(project, flags, from->first, from->second)
                        : copy_in(project, flags, to->first, to->second)};
  });
}

}  // namespace stack::cli
