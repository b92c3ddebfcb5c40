// The public face of seccomp.h: the process-wide cache of compiled programs (one compile per
// distinct mode, profile and capability set) and `security_opt` parsing. Thread-safe: the
// engine starts containers from a pool.
#include "engine/seccomp.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "common/unique_fd.h"
#include "engine/seccomp_profile.h"

namespace stack::engine {
namespace {

namespace fs = std::filesystem;

struct Compiled {
  std::shared_ptr<const std::string> program;
  unsigned flags = 0;
};

// The whole profile text is part of the key (not only its hash): two profiles can never share
// a program, whatever their hashes.
struct Key {
  SeccompSpec::Mode mode;
  uint64_t caps;
  std::string profile;
  bool operator==(const Key&) const = default;
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = std::hash<std::string>{}(k.profile);
    h ^= std::hash<uint64_t>{}(k.caps) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h ^ static_cast<size_t>(k.mode);
  }
};

class Cache {
 public:
  // ORIGIN names a JSON profile in errors ("seccomp profile /srv/app/seccomp.json").
  Result<Compiled> get(const SeccompSpec& spec, std::string_view origin = "seccomp profile") {
    Key key{spec.mode, spec.capabilities,
            spec.mode == SeccompSpec::Mode::kProfile ? spec.profile_json : std::string()};
    {
      std::shared_lock lock(mutex_);
      if (auto it = entries_.find(key); it != entries_.end()) return it->second;
    }
    // One compile at a time: a second caller with the same spec waits and then finds it, so
    // every caller gets the same pointer; libseccomp's lazy kernel probing is not thread-safe.
    std::lock_guard compiling(compile_mutex_);
    {
      std::shared_lock lock(mutex_);
      if (auto it = entries_.find(key); it != entries_.end()) return it->second;
    }
    auto c = compile(spec, origin);
    if (!c) return fail(c.error());
    std::unique_lock lock(mutex_);
    if (entries_.size() >= kMaxEntries) evict_unused();
    return entries_.emplace(std::move(key), std::move(*c)).first->second;
  }

 private:
  static Result<Compiled> compile(const SeccompSpec& spec, std::string_view origin) {
    auto host = STACK_TRY_CTX(seccomp::current_host(), "seccomp");
    Compiled c;
    if (spec.mode == SeccompSpec::Mode::kDefault) {
      c.program = std::make_shared<const std::string>(
          STACK_TRY_CTX(seccomp::compile(seccomp::default_profile(), spec.capabilities, host),
                        "seccomp default profile"));
      return c;
    }
    auto profile = seccomp::parse_profile(spec.profile_json, origin);
    if (!profile) return fail(profile.error());
    c.program = std::make_shared<const std::string>(
        STACK_TRY_CTX(seccomp::compile(*profile, spec.capabilities, host), origin));
    c.flags = profile->flags;
    return c;
  }

  // A daemon lives long and profiles get edited: past this many entries, the programs no
  // container start holds any more are dropped (under the write lock nobody can take a new
  // reference, so a use count of 1 is the cache's own).
  static constexpr size_t kMaxEntries = 64;
  void evict_unused() {
    std::erase_if(entries_, [](const auto& e) { return e.second.program.use_count() == 1; });
  }

  std::shared_mutex mutex_;
  std::mutex compile_mutex_;
  std::unordered_map<Key, Compiled, KeyHash> entries_;
};

Cache& cache() {
  static Cache c;
  return c;
}

constexpr off_t kMaxProfileBytes = 4 << 20;

// A profile file, refused unless a regular file of sane size (not a FIFO that blocks the
// daemon, not /dev/zero).
Result<std::string> read_profile(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) return fail_errno("open");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("stat");
  if (!S_ISREG(st.st_mode)) return fail("not a regular file");
  if (st.st_size > kMaxProfileBytes)
    return fail("larger than " + std::to_string(kMaxProfileBytes >> 20) + " MiB");
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read");
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

}  // namespace

Result<std::shared_ptr<const std::string>> seccomp_program(const SeccompSpec& spec) {
  if (spec.mode == SeccompSpec::Mode::kUnconfined) return std::shared_ptr<const std::string>();
  auto c = cache().get(spec);
  if (!c) return fail(c.error());
  return c->program;
}

Result<unsigned> seccomp_filter_flags(const SeccompSpec& spec) {
  if (spec.mode == SeccompSpec::Mode::kUnconfined) return 0u;
  auto c = cache().get(spec);
  if (!c) return fail(c.error());
  return c->flags;
}

Result<SeccompSpec> seccomp_from_security_opt(const std::vector<std::string>& opts,
                                              const fs::path& base, uint64_t caps) {
  SeccompSpec spec;
  spec.capabilities = caps;
  for (const auto& opt : opts) {
    // "seccomp=value", or Docker's older "seccomp:value"; the value may hold either sign.
    constexpr std::string_view kKey = "seccomp";
    if (opt.size() <= kKey.size() || opt.compare(0, kKey.size(), kKey) != 0 ||
        (opt[kKey.size()] != '=' && opt[kKey.size()] != ':'))
      continue;
    std::string value = opt.substr(kKey.size() + 1);
    if (value == "unconfined") {
      spec.mode = SeccompSpec::Mode::kUnconfined;
      spec.profile_json.clear();
    } else if (value == "builtin") {  // docker CLI's name for the default profile
      spec.mode = SeccompSpec::Mode::kDefault;
      spec.profile_json.clear();
    } else if (value.empty()) {
      return fail("security_opt \"" + opt + "\": seccomp needs unconfined, builtin or a file");
    } else {
      fs::path path = fs::path(value).is_absolute() ? fs::path(value) : base / value;
      auto text = read_profile(path);
      if (!text) return fail(text.error().wrap("seccomp profile " + path.string()));
      // Parsed here for errors that name the file and the position, then compiled once so a
      // profile libseccomp refuses fails now, not at the container's start (and is cached).
      const std::string origin = "seccomp profile " + path.string();
      if (auto p = seccomp::parse_profile(*text, origin); !p) return fail(p.error());
      spec.mode = SeccompSpec::Mode::kProfile;
      spec.profile_json = std::move(*text);
      if (auto c = cache().get(spec, origin); !c) return fail(c.error());
    }
  }
  return spec;
}

}  // namespace stack::engine
