// Image references by the distribution grammar, normalised by Docker's rule: "busybox" is
// "docker.io/library/busybox:latest", "127.0.0.1:5000/app" is "127.0.0.1:5000/app:latest".
// Pure string work, no I/O; the planner and the CLI may show the familiar form.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace stack::fs {

inline constexpr std::string_view kDockerHub = "docker.io";

struct Reference {
  std::string domain;  // "docker.io", "ghcr.io", "127.0.0.1:5000"
  std::string path;    // "library/busybox", "org/app"
  std::string tag;     // "latest"; empty when the reference is a digest alone
  std::string digest;  // "sha256:<hex>", or empty

  // "docker.io/library/busybox"
  [[nodiscard]] std::string name() const { return domain + "/" + path; }
  // The canonical form: "docker.io/library/busybox:latest", "ghcr.io/a/b@sha256:...". A
  // reference with both a tag and a digest is pulled by its digest, and named by it.
  [[nodiscard]] std::string str() const;
  // As `docker images` shows it: "busybox:latest", "org/app:1", "ghcr.io/a/b:2".
  [[nodiscard]] std::string familiar() const;
  // The digest when there is one, else the tag: what a manifest request names.
  [[nodiscard]] const std::string& tag_or_digest() const { return digest.empty() ? tag : digest; }
};

// Parses and normalises REF. Error (naming REF and the reason) for anything the grammar refuses.
[[nodiscard]] Result<Reference> parse_reference(std::string_view ref);
// parse_reference(ref)->str().
[[nodiscard]] Result<std::string> normalize_reference(std::string_view ref);
// The familiar form of a canonical reference string; REF itself when it does not parse.
[[nodiscard]] std::string familiar_reference(std::string_view ref);

}  // namespace stack::fs
