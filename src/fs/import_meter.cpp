// See import_meter.h.
#include "fs/import_meter.h"

#include <sys/statvfs.h>

#include "common/files.h"

namespace stack::fs {

namespace {
constexpr uint64_t kCheckEvery = 16ULL << 20;
}  // namespace

Result<uint64_t> free_bytes(const ImportOptions& options, const std::filesystem::path& path) {
  if (options.free_bytes) return options.free_bytes(path);
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return fail_errno("statvfs " + path.string());
  return static_cast<uint64_t>(st.f_bfree) * st.f_frsize;
}

ImportMeter::ImportMeter(const ImportOptions& options, std::filesystem::path on, std::string phase,
                         uint64_t total)
    : options_(options),
      on_(std::move(on)),
      phase_(std::move(phase)),
      total_(total),
      next_check_(kCheckEvery) {}

Result<void> ImportMeter::add(uint64_t n) {
  count_ += n;
  if (count_ > options_.max_bytes)
    return fail("the image is larger than the import limit of " + format_size(options_.max_bytes) +
                " (" + phase_ + " stopped at " + format_size(count_) + ")");
  if (count_ < next_check_) return {};
  next_check_ = count_ + kCheckEvery;
  if (options_.progress) options_.progress(phase_, count_, total_);
  auto free = free_bytes(options_, on_);
  if (!free) return fail(free.error());
  if (*free < options_.reserve_bytes)
    return fail("the file system of " + on_.string() + " is almost full (" + format_size(*free) +
                " free, " + format_size(options_.reserve_bytes) + " must stay free): " + phase_ +
                " stopped after " + format_size(count_));
  return {};
}

void ImportMeter::done() {
  if (options_.progress) options_.progress(phase_, count_, total_ ? total_ : count_);
}

}  // namespace stack::fs
