// Issue 10 item 6: names are bounded where the kernel or DNS bounds them, and a longer one is
// refused at load with its position (a 300-character service name used to load, fail at start
// with "File name too long", and make every `down` fail the same way).
#include <doctest/doctest.h>

#include "spec/loader.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::spec;

namespace {

struct Project {
  test::TempDir dir{"stack-spec-names"};
  LoadOptions opts;
  Project() { opts.working_dir = dir.path(); }
  std::string error_of(const std::string& yaml) {
    test::write_text(dir / "stack.yaml", yaml);
    auto r = load(opts);
    return r ? "LOADED" : r.error().message;
  }
};

std::string name_of(size_t n, char c = 'a') { return std::string(n, c); }

}  // namespace

TEST_CASE("the issue's 300-character service name is refused at load, with its position") {
  Project p;
  auto e = p.error_of("services:\n  " + name_of(300) + ":\n    image: busybox\n");
  CHECK(e == "stack.yaml:2:3: service name \"" + name_of(32) +
                 "...\" is 300 bytes long, at most 63 (a DNS label on its networks, and part of "
                 "its containers' names)");
}

TEST_CASE("service names: 63 bytes load, 64 do not") {
  Project p;
  CHECK(p.error_of("services:\n  " + name_of(63) + ":\n    image: busybox\n") == "LOADED");
  CHECK(p.error_of("services:\n  " + name_of(64) + ":\n    image: busybox\n")
            .find("stack.yaml:2:3: service name") == 0);
}

TEST_CASE("project names: from name:, -p and the directory, at most 63 bytes") {
  Project p;
  const std::string svc = "services:\n  web:\n    image: busybox\n";
  CHECK(p.error_of("name: " + name_of(63) + "\n" + svc) == "LOADED");
  CHECK(p.error_of("name: " + name_of(64) + "\n" + svc)
            .find("stack.yaml:1:7: project name \"" + name_of(64) +
                  "\" is 64 bytes long, at most 63") == 0);
  p.opts.project_name = name_of(100, 'p');
  auto e = p.error_of(svc);
  CHECK(e.find("project name \"" + name_of(32, 'p') + "...\" is 100 bytes long") !=
        std::string::npos);
  CHECK(e.find("use -p or name:") != std::string::npos);
}

TEST_CASE("hostname, domainname and container_name are bounded as the kernel bounds them") {
  Project p;
  auto svc = [](const std::string& body) {
    return "services:\n  web:\n    image: busybox\n" + body;
  };
  CHECK(p.error_of(svc("    hostname: " + name_of(63) + "\n")) == "LOADED");
  CHECK(p.error_of(svc("    hostname: " + name_of(64) + "\n")) ==
        "stack.yaml:4:15: services.web.hostname: hostname \"" + name_of(64) +
            "\" is 64 bytes long, at most 63 (sethostname(2), and a DNS label)");
  CHECK(p.error_of(svc("    domainname: " + name_of(65) + "\n"))
            .find("stack.yaml:4:17: services.web.domainname: domainname") == 0);
  CHECK(p.error_of(svc("    container_name: " + name_of(256) + "\n"))
            .find("stack.yaml:4:21: services.web.container_name: container name") == 0);
}

TEST_CASE("network and volume names, as given or made from the project, fit a path component") {
  Project p;
  const std::string svc = "services:\n  web:\n    image: busybox\n";
  CHECK(p.error_of("name: demo\n" + svc + "networks:\n  n:\n    name: " + name_of(255) + "\n") ==
        "LOADED");
  CHECK(p.error_of("name: demo\n" + svc + "networks:\n  n:\n    name: " + name_of(256) + "\n")
            .find("stack.yaml:6:3: networks.n: network name") == 0);
  // The default name is "<project>_<key>": demo_ + 251 bytes is 255 + 1.
  CHECK(p.error_of("name: demo\n" + svc + "volumes:\n  " + name_of(250) + ":\n") == "LOADED");
  CHECK(p.error_of("name: demo\n" + svc + "volumes:\n  " + name_of(251) + ":\n")
            .find("stack.yaml:6:3: volumes." + name_of(251) + ": volume name \"demo_") == 0);
}

TEST_CASE("the default hostname is the container's name, or docker's 12 hex digits if too long") {
  CHECK(default_hostname("demo-web-1") == "demo-web-1");
  CHECK(default_hostname(name_of(63)) == name_of(63));
  auto long_name = name_of(63, 'p') + "-" + name_of(63, 's') + "-1";
  auto h = default_hostname(long_name);
  CHECK(h.size() == 12);
  CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(h == default_hostname(long_name));
  CHECK(h != default_hostname(name_of(63, 'p') + "-" + name_of(63, 's') + "-2"));
}
