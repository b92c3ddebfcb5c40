// Storage in the engine <-> stack-init message (issue 13): every mount kind the engine sends
// (binds with subpath and propagation, tmpfs with options, a volume to seed) reaches the
// init's own decoder as sent, and the runtime record keeps them, secrets' owner and mode but
// never their content. No root needed.
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <unistd.h>

#include "engine/mounts.h"
#include "state/runtime_codec.h"

extern "C" {
#include "engine/init/init.h"
}

using namespace stack;
using model::BindMount;

namespace {

model::ContainerSpec storage_spec() {
  model::ContainerSpec s;
  s.process.argv = {"sleep", "1"};
  BindMount vol{"/var/lib/stack/volumes/p_data", "/data", false};
  vol.subpath = "sub/dir";
  vol.seed = true;
  BindMount bind{"/srv", "/srv", true};
  bind.propagation = "rslave";
  BindMount tmp;
  tmp.kind = BindMount::Kind::kTmpfs;
  tmp.target = "/scratch";
  tmp.options = "size=1m,mode=1770";
  BindMount image;
  image.kind = BindMount::Kind::kImage;
  image.target = "/img";
  image.read_only = true;
  image.subpath = "bin";
  image.layers = {"/var/lib/stack/layers/low", "/var/lib/stack/layers/high"};
  image.image_id = "sha256:abc";
  s.mounts = {vol, bind, tmp, image};
  s.read_only_root = true;
  s.shm_size = 8 << 20;
  return s;
}

}  // namespace

TEST_CASE("mounts: propagation words become mount(2) flags") {
  CHECK(engine::propagation_flags("") == 0);
  CHECK(engine::propagation_flags("shared") == MS_SHARED);
  CHECK(engine::propagation_flags("rslave") == (MS_SLAVE | MS_REC));
  CHECK(engine::propagation_flags("rprivate") == (MS_PRIVATE | MS_REC));
  CHECK(engine::propagation_flags("bogus") == 0);
}

TEST_CASE("mounts: every kind reaches the init's decoder as sent") {
  engine::wire::Writer w;
  auto spec = storage_spec();
  engine::add_mounts(w, spec);
  w.bytes(W_ARG, "sleep");
  std::string msg = w.message();
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(::write(fds[1], msg.data(), msg.size()) == static_cast<ssize_t>(msg.size()));
  ::close(fds[1]);
  config cfg{};
  char err[512] = "";
  REQUIRE_MESSAGE(read_config(fds[0], &cfg, err, sizeof err) == 0, err);
  ::close(fds[0]);
  REQUIRE(cfg.nbinds == 4);
  CHECK(std::string(cfg.binds[0].src) == "/var/lib/stack/volumes/p_data");
  CHECK(std::string(cfg.binds[0].subpath) == "sub/dir");
  CHECK(cfg.binds[0].seed == 1);
  CHECK(cfg.binds[0].ro == 0);
  CHECK(cfg.binds[1].ro == 1);
  CHECK(cfg.binds[1].propagation == (MS_SLAVE | MS_REC));
  CHECK(cfg.binds[1].subpath == nullptr);
  CHECK(cfg.binds[2].kind == 1);
  CHECK(cfg.binds[2].src == nullptr);
  CHECK(std::string(cfg.binds[2].dst) == "/scratch");
  CHECK(std::string(cfg.binds[2].data) == "size=1m,mode=1770");
  CHECK(cfg.binds[3].kind == 2);  // an image: its layers topmost first, as overlayfs stacks them
  CHECK(std::string(cfg.binds[3].src) == "/var/lib/stack/layers/high:/var/lib/stack/layers/low");
  CHECK(std::string(cfg.binds[3].subpath) == "bin");
  CHECK(cfg.binds[3].ro == 1);
  CHECK(cfg.root_readonly == 1);
  CHECK(cfg.shm_size == 8 << 20);
}

TEST_CASE("runtime record: mounts and secret files round-trip, secret contents never stored") {
  model::RuntimeRecord r;
  r.spec = storage_spec();
  r.secret_files = {{"/run/stack/secrets/p-s-1/0", 1000, 1000, 0400}};
  r.secret_contents =
      std::make_shared<std::vector<std::string>>(std::vector<std::string>{"hunter2-never-stored"});
  std::string stored = state::encode_runtime(r);
  CHECK(stored.find("hunter2-never-stored") == std::string::npos);
  auto back = state::decode_runtime(stored);
  REQUIRE_MESSAGE(back, (back ? "" : back.error().message));
  const auto& m = back->spec.mounts;
  REQUIRE(m.size() == 4);
  CHECK(m[0].subpath == "sub/dir");
  CHECK(m[0].seed);
  CHECK(m[1].propagation == "rslave");
  CHECK(m[1].read_only);
  CHECK(m[2].kind == BindMount::Kind::kTmpfs);
  CHECK(m[2].options == "size=1m,mode=1770");
  CHECK(m[3].kind == BindMount::Kind::kImage);
  CHECK(m[3].layers == std::vector<std::filesystem::path>{"/var/lib/stack/layers/low",
                                                         "/var/lib/stack/layers/high"});
  CHECK(m[3].image_id == "sha256:abc");
  CHECK(m[3].subpath == "bin");
  CHECK(back->spec.read_only_root);
  CHECK(back->spec.shm_size == 8 << 20);
  REQUIRE(back->secret_files.size() == 1);
  CHECK(back->secret_files[0].uid == 1000);
  CHECK(back->secret_files[0].mode == 0400);
  CHECK(!back->secret_contents);
}

TEST_CASE("mounts: bind.recursive disabled and writable reach the init and survive the record") {
  model::RuntimeRecord r;
  BindMount all{"/srv/a", "/a", true};
  BindMount top{"/srv/b", "/b", true};
  top.recursive = BindMount::Recursive::kTopOnly;
  BindMount below{"/srv/c", "/c", true};
  below.recursive = BindMount::Recursive::kWritableBelow;
  r.spec.process.argv = {"sleep", "1"};
  r.spec.mounts = {all, top, below};
  engine::wire::Writer w;
  engine::add_mounts(w, r.spec);
  w.bytes(W_ARG, "sleep");
  std::string msg = w.message();
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(::write(fds[1], msg.data(), msg.size()) == static_cast<ssize_t>(msg.size()));
  ::close(fds[1]);
  config cfg{};
  char err[512] = "";
  REQUIRE_MESSAGE(read_config(fds[0], &cfg, err, sizeof err) == 0, err);
  ::close(fds[0]);
  REQUIRE(cfg.nbinds == 3);
  CHECK(cfg.binds[0].recursive == 0);
  CHECK(cfg.binds[1].recursive == 1);
  CHECK(cfg.binds[2].recursive == 2);

  auto back = state::decode_runtime(state::encode_runtime(r));
  REQUIRE_MESSAGE(back, (back ? "" : back.error().message));
  REQUIRE(back->spec.mounts.size() == 3);
  CHECK(back->spec.mounts[0].recursive == BindMount::Recursive::kAll);
  CHECK(back->spec.mounts[1].recursive == BindMount::Recursive::kTopOnly);
  CHECK(back->spec.mounts[2].recursive == BindMount::Recursive::kWritableBelow);
}
