// Records and locks of stack-runtime's containers (see record.h).
#include "runtime/record.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <ctime>

#include "common/files.h"

namespace stack::runtime {

using json = nlohmann::json;

Result<void> check_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || id[0] == '.')
    return fail("invalid container id \"" + id + "\"");
  for (char c : id)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' && c != '+')
      return fail("invalid container id \"" + id + "\": only [A-Za-z0-9_.+-]");
  return {};
}

uint64_t live_start_time(pid_t pid) {
  if (pid <= 0) return 0;
  auto text = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return 0;
  auto close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) return 0;
  char state = (*text)[close + 2];
  if (state == 'Z' || state == 'X') return 0;
  // Fields after the comm: 3 is the state; the start time is field 22.
  const char* p = text->c_str() + close + 2;
  for (int field = 3; field < 22 && *p; p++)
    if (*p == ' ') field++;
  return std::strtoull(p, nullptr, 10);
}

std::string rfc3339_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

std::string status_of(const Record& r) {
  bool alive = r.start_time != 0 && live_start_time(r.pid) == r.start_time;
  if (!r.started) return alive ? "created" : "stopped";
  if (!alive) return "stopped";
  if (r.paused)
    if (auto drv = cgroups(); drv)
      if (auto f = (*drv)->frozen(r.cgroup); f && *f) return "paused";
  return "running";
}

json state_json(const Record& r, const std::string& status) {
  return json{{"ociVersion", "1.0.2"},  {"id", r.id},
              {"status", status},       {"pid", status == "stopped" ? 0 : r.pid},
              {"bundle", r.bundle},     {"annotations", r.annotations},
              {"created", r.created},   {"rootfs", ""},
              {"owner", ""}};
}

Result<Record> read_record(const std::filesystem::path& dir, const std::string& id) {
  auto text = read_file(dir / "state.json");
  if (!text) return fail("container " + id + " does not exist");
  try {
    json j = json::parse(*text);
    Record r;
    r.id = j.at("id");
    r.bundle = j.at("bundle");
    r.created = j.at("created");
    r.cgroup = j.at("cgroup");
    r.pid = j.at("pid");
    r.start_time = j.at("start_time");
    r.started = j.at("started");
    r.paused = j.value("paused", false);
    r.annotations = j.at("annotations");
    return r;
  } catch (const json::exception& e) {
    return fail("container " + id + ": state.json: " + e.what());
  }
}

Result<void> write_record(const std::filesystem::path& dir, const Record& r) {
  json j{{"id", r.id},         {"bundle", r.bundle},         {"created", r.created},
         {"cgroup", r.cgroup}, {"pid", r.pid},               {"start_time", r.start_time},
         {"started", r.started}, {"paused", r.paused}, {"annotations", r.annotations}};
  return write_file_atomic(dir / "state.json", j.dump(), 0600);
}

Result<std::unique_ptr<engine::CgroupDriver>> cgroups() {
  auto d = engine::detect_cgroup_driver();
  if (!d) return fail(d.error().wrap("cgroups"));
  return std::move(*d);
}

Result<UniqueFd> lock_container(const std::filesystem::path& dir, const std::string& id) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return fail("container " + id + " does not exist");
    return fail_errno("open " + dir.string());
  }
  while (::flock(fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) return fail_errno("lock " + dir.string());
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("stat " + dir.string());
  if (st.st_nlink == 0) return fail("container " + id + " does not exist");
  return fd;
}

}  // namespace stack::runtime
