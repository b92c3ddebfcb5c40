// A directory under /tmp removed with everything in it when the test ends, pass or fail.
#pragma once

#include <filesystem>
#include <string>

namespace stack::test {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "stack-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::string& p) const { return path_ / p; }

 private:
  std::filesystem::path path_;
};

// Writes CONTENT to PATH, creating parent directories.
void write_text(const std::filesystem::path& path, const std::string& content);
std::string read_text(const std::filesystem::path& path);

}  // namespace stack::test
