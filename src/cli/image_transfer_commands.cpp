// `stack image import NAME PATH|-`, `stack image load [-i PATH|-]`, `stack image save [-o
// PATH|-] NAME...`: this end opens the user's files with the user's own rights and streams the
// tar through the daemon's socket (api/image_transfer.h), as docker does; the daemon opens no
// host path. A directory is packed here (common/tree_copy.h). A save is written under a
// temporary name beside its output and renamed once whole. Progress on stderr.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "api/exec_stream.h"
#include "cli/cli.h"
#include "cli/frame_stream.h"
#include "common/scope_guard.h"
#include "common/tree_copy.h"

namespace stack::cli {

namespace {

using nlohmann::json;
namespace frames = api::exec;

constexpr std::string_view kUpgrade = "stack-image";  // src/api/image_transfer.h
constexpr uint64_t kReportEvery = 16ULL << 20;

Result<void> write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("write");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// Phases and byte counts on stderr: a terminal redraws one line, a pipe gets each phase once.
class Progress {
 public:
  explicit Progress(bool quiet) : quiet_(quiet), tty_(::isatty(2) == 1) {}
  ~Progress() { clear(); }
  void show(const std::string& phase, uint64_t bytes, uint64_t total) {
    if (quiet_) return;
    if (tty_) {
      std::string text = phase + " " + human_size(bytes) + (total ? "/" + human_size(total) : "");
      std::fprintf(stderr, "\r\033[2K%s", text.c_str());
    } else if (phase != phase_) {
      std::fprintf(stderr, "%s\n", phase.c_str());
    }
    phase_ = phase;
  }
  // A line from the daemon: {"progress": {phase, bytes, total}}.
  void show_line(std::string_view line) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("progress")) return;
    const auto& p = j["progress"];
    show(p.value("phase", ""), p.value("bytes", uint64_t{0}), p.value("total", uint64_t{0}));
  }
  void clear() {
    if (tty_ && !quiet_ && !phase_.empty()) std::fprintf(stderr, "\r\033[2K");
    phase_.clear();
  }

 private:
  bool quiet_, tty_;
  std::string phase_;
};

// The daemon's frames on the upgraded socket.
using Frames = DaemonFrames;

// Reads the daemon's frames to its last: progress lines shown, stdout payloads given to ON_DATA;
// ok on exit 0, else the daemon's error.
Result<void> finish(Frames& in, Progress& progress,
                    const std::function<Result<void>(std::string_view)>& on_data) {
  for (;;) {
    auto f = in.next();
    if (!f) return fail(f.error());
    switch (f->type) {
      case frames::Type::stderr_data:
        progress.show_line(f->payload);
        break;
      case frames::Type::stdout_data:
        if (auto r = on_data(f->payload); !r) return r;
        break;
      case frames::Type::exit: {
        auto code = frames::decode_exit(f->payload);
        if (code && *code == 0) return {};
        return fail("the daemon ended the transfer with code " +
                    std::to_string(code ? *code : -1));
      }
      case frames::Type::error:
        return fail(f->payload);
      default:
        return fail("the daemon sent a frame of type " +
                    std::to_string(static_cast<int>(f->type)));
    }
  }
}

Result<api::Upgraded> connect(const std::string& what, const json& body) {
  api::Response refused;
  auto up = daemon_client().upgrade("POST", "/v1/images/" + what, body.dump(), kUpgrade, refused);
  if (!up) return fail(up.error());
  if (!up->socket) {
    auto j = json::parse(refused.body, nullptr, false);
    return fail(j.is_object() && j.contains("error") && j["error"].is_string()
                    ? j["error"].get<std::string>()
                    : "the daemon answered " + std::to_string(refused.status));
  }
  return std::move(*up);
}

// What an import or load sends: "-" (stdin), a file, or a directory packed here.
struct Source {
  std::string path;
  bool directory = false;
  UniqueFd fd;        // a file's (stdin: not owned, -1 here)
  uint64_t size = 0;  // a file's; 0: not known
};

Result<Source> open_source(const std::string& path) {
  Source s;
  s.path = path;
  if (path == "-") {
    if (::isatty(0) == 1) return fail("stdin is a terminal: give a tar file, or pipe one in");
    return s;
  }
  // With the user's own rights: what the user cannot read, the daemon does not read for them.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("stat " + path);
  if (S_ISDIR(st.st_mode)) {
    s.directory = true;
    return s;
  }
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
    return fail(path + " is neither a directory nor a tar file");
  if (S_ISREG(st.st_mode)) s.size = static_cast<uint64_t>(st.st_size);
  s.fd = std::move(fd);
  return s;
}

// Streams SOURCE as BODY asks (import or load); the daemon's result line.
Result<json> send_tar(const std::string& what, json body, Source& source, bool quiet) {
  if (source.size > 0) body["size"] = source.size;
  auto up = connect(what, body);
  if (!up) return fail(up.error());
  int sock = up->socket.get();
  Frames in(sock, std::move(up->pending));
  Progress progress(quiet);
  uint64_t sent = 0, next_report = 0;
  auto sink = [&](std::string_view data) -> Result<void> {
    while (!data.empty()) {
      auto piece = data.substr(0, frames::kChunk);
      if (!send_all(sock, frames::encode(frames::Type::stdin_data, piece)))
        return fail("the daemon stopped reading");
      data.remove_prefix(piece.size());
      sent += piece.size();
    }
    if (sent >= next_report) {
      progress.show("copy", sent, source.size);
      next_report = sent + kReportEvery;
    }
    return {};
  };
  Result<void> done;
  if (source.directory) {
    done = copy::pack({AT_FDCWD, false}, source.path + "/.", {}, sink);
  } else {
    int fd = source.path == "-" ? 0 : source.fd.get();
    std::vector<char> buf(frames::kChunk);
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        done = fail_errno("read " + (source.path == "-" ? std::string("stdin") : source.path));
        break;
      }
      if (n == 0) break;
      if (done = sink(std::string_view(buf.data(), static_cast<size_t>(n))); !done) break;
    }
  }
  if (done) {
    progress.show("copy", sent, source.size ? source.size : sent);
    send_all(sock, frames::encode(frames::Type::stdin_eof));
  }
  json result;
  auto end = finish(in, progress, [&](std::string_view data) -> Result<void> {
    result = json::parse(data, nullptr, false);
    return {};
  });
  progress.clear();
  // The daemon's answer says more than our own failure to send (it stopped reading).
  if (!end) return fail(end.error());
  if (!done) return fail(done.error());
  if (!result.is_object()) return fail("the daemon sent no result");
  return result;
}

[[noreturn]] void exit_with(const Error& e) { throw ExitCode{report(e)}; }

void import_image(const std::string& name, const std::string& path) {
  auto source = open_source(path);
  if (!source) exit_with(source.error().wrap("import"));
  std::fprintf(stderr, "Importing %s from %s\n", name.c_str(),
               path == "-" ? "stdin" : path.c_str());
  auto r = send_tar("import", {{"reference", name}}, *source, false);
  if (!r) exit_with(r.error());
  std::printf("%s\n", r->value("imported", "").c_str());
}

void load_images(const std::string& path, bool quiet) {
  auto source = open_source(path);
  if (!source) exit_with(source.error().wrap("load"));
  auto r = send_tar("load", json::object(), *source, quiet);
  if (!r) exit_with(r.error());
  for (const auto& i : (*r)["loaded"]) {
    std::string name = i.value("reference", "");
    std::printf("Loaded image: %s\n", name.empty() ? i.value("id", "").c_str() : name.c_str());
  }
}

void save_images(const std::vector<std::string>& names, const std::string& output) {
  bool to_stdout = output.empty() || output == "-";
  if (to_stdout && ::isatty(1) == 1)
    exit_with(Error{"save: refusing to write a tar to a terminal: give -o FILE, or redirect"});
  UniqueFd out;
  std::string tmp;
  if (!to_stdout) {  // beside OUTPUT, so that the rename stays on its file system
    auto slash = output.find_last_of('/');
    std::string dir = slash == std::string::npos ? "./" : output.substr(0, slash + 1);
    tmp = dir + ".stack-save-XXXXXX";
    out = UniqueFd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!out) exit_with(Error::from_errno("save: create a temporary file in " + dir));
    mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(out.get(), 0666 & ~mask);  // as the shell's `> FILE` would make it
  }
  auto unlink_tmp = ScopeGuard([&] {
    if (!tmp.empty()) ::unlink(tmp.c_str());
  });
  auto up = connect("save", {{"references", names}});
  if (!up) exit_with(up.error());
  Frames in(up->socket.get(), std::move(up->pending));
  Progress progress(false);
  int fd = to_stdout ? 1 : out.get();
  auto r = finish(in, progress, [&](std::string_view data) {
    return write_all(fd, data).map_error(
        [&](Error e) { return e.wrap(to_stdout ? "save to stdout" : "save to " + tmp); });
  });
  progress.clear();
  if (!r) exit_with(r.error().wrap("save"));
  if (!to_stdout) {
    if (::fsync(out.get()) != 0) exit_with(Error::from_errno("save: fsync " + tmp));
    if (::rename(tmp.c_str(), output.c_str()) != 0)
      exit_with(Error::from_errno("save: rename to " + output));
    unlink_tmp.dismiss();
  }
}

}  // namespace

void add_image_transfer_commands(CLI::App* image) {
  auto* save = image->add_subcommand(
      "save",
      "Write images to a tar (an OCI layout and docker's manifest.json: skopeo "
      "oci-archive:, podman load and docker load read it)");
  static std::vector<std::string> save_names;
  static std::string output;
  save->add_option("names", save_names, "NAME[:TAG]")->required();
  save->add_option("-o,--output", output, "The tar to write (default, or -: stdout)");
  save->callback([] { save_images(save_names, output); });

  auto* load = image->add_subcommand("load",
                                     "Load images from an OCI archive or a docker "
                                     "save tarball");
  static std::string input = "-";
  static bool load_quiet = false;
  load->add_option("-i,--input", input, "The tar to read (default, or -: stdin)");
  load->add_flag("-q,--quiet", load_quiet, "No progress");
  load->callback([] { load_images(input, load_quiet); });

  auto* import = image->add_subcommand(
      "import",
      "Import a rootfs (directory or tarball, plain, gzip or zstd) as a one-layer "
      "image, or an OCI image layout (directory or tar) or docker save tarball");
  static std::string name, path;
  import->add_option("name", name, "NAME[:TAG]")->required();
  import->add_option("path", path, "Directory or tarball, or - (a tarball on stdin)")->required();
  import->callback([] { import_image(name, path); });
}

}  // namespace stack::cli
