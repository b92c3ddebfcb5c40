// The stack-file corpus under tests/data/stackfiles: every valid/NAME.yaml loads and renders
// as valid/NAME.json (`stack config --format json`), renders again the same after a round
// trip through its own YAML; every invalid/NAME.yaml fails with the lines of invalid/NAME.err.
// Adding a case is adding files. Header comments of a case file set its options:
//   # test-files: base.yaml parts/override.yaml   (the -f files; default: the case file)
//   # test-profiles: debug,tools                  # test-env: KEY=VALUE KEY2=VALUE
//   # test-env-file: parts/prod.env
// STACK_UPDATE_CORPUS=1 rewrites the expected files from what the loader says (review them).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "spec/loader.h"
#include "support/temp_dir.h"

using namespace stack;
using namespace stack::spec;
namespace fs = std::filesystem;

namespace {

const fs::path kCorpus = fs::path(STACK_SOURCE_DIR) / "tests/data/stackfiles";

std::vector<std::string> words(const std::string& text, char sep = ' ') {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string w; std::getline(in, w, sep);)
    if (!w.empty()) out.push_back(w);
  return out;
}

LoadOptions options_for(const fs::path& file) {
  LoadOptions opts;
  opts.working_dir = file.parent_path();
  opts.environment = {{"HOME", "/home/user"}};
  std::ifstream in(file);
  for (std::string line; std::getline(in, line) && line.rfind("#", 0) == 0;) {
    auto value = [&](const std::string& key) -> std::optional<std::string> {
      std::string prefix = "# " + key + ":";
      if (line.rfind(prefix, 0) != 0) return std::nullopt;
      return line.substr(prefix.size());
    };
    if (auto v = value("test-files"))
      for (const auto& f : words(*v)) opts.files.emplace_back(f);
    if (auto v = value("test-profiles"))
      for (const auto& p : words(*v, ',')) opts.profiles.push_back(words(p).at(0));
    if (auto v = value("test-env"))
      for (const auto& kv : words(*v)) opts.environment[kv.substr(0, kv.find('='))] =
          kv.substr(kv.find('=') + 1);
    if (auto v = value("test-env-file"))
      for (const auto& f : words(*v)) opts.env_files.emplace_back(f);
  }
  if (opts.files.empty()) opts.files.emplace_back(file.filename());
  return opts;
}

std::vector<fs::path> cases(const std::string& kind) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kCorpus / kind))
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
    text.replace(at, from.size(), to);
  return text;
}

bool updating() { return std::getenv("STACK_UPDATE_CORPUS") != nullptr; }

std::string read_or_empty(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("the corpus has at least 150 stack files") {
  CHECK(cases("valid").size() + cases("invalid").size() >= 150);
}

TEST_CASE("corpus: valid files render as expected and survive a round trip") {
  for (const fs::path& file : cases("valid")) {
    CAPTURE(file.filename().string());
    auto stack = load(options_for(file));
    if (!stack) {
      FAIL_CHECK(stack.error().message);
      continue;
    }
    (void)check_supported(*stack);
    nlohmann::json doc = stack_json(*stack);
    std::string text = replace_all(render_json(doc), file.parent_path().string(), "<dir>");
    fs::path expected = fs::path(file).replace_extension(".json");
    if (updating()) test::write_text(expected, text);
    CHECK(text == read_or_empty(expected));

    // The YAML rendering is itself a stack file meaning the same.
    test::TempDir dir("stack-corpus");
    test::write_text(dir / "stack.yaml", render_yaml(doc));
    LoadOptions again;
    again.working_dir = dir.path();
    again.environment = {{"HOME", "/home/user"}};
    again.profiles = stack->active_profiles;
    auto reloaded = load(again);
    if (!reloaded) {
      FAIL_CHECK("round trip: " << reloaded.error().message);
      continue;
    }
    CHECK(stack_json(*reloaded) == doc);
    for (const Service& s : stack->services) {
      REQUIRE(reloaded->find(s.name) != nullptr);
      CHECK(config_hash(s) == config_hash(*reloaded->find(s.name)));
    }
  }
}

TEST_CASE("corpus: invalid files fail with the expected errors") {
  for (const fs::path& file : cases("invalid")) {
    CAPTURE(file.filename().string());
    auto stack = load(options_for(file));
    std::string got = stack ? "LOADED\n" : stack.error().message + "\n";
    got = replace_all(got, file.parent_path().string(), "<dir>");
    fs::path expected = fs::path(file).replace_extension(".err");
    if (updating()) test::write_text(expected, got);
    CHECK(got == read_or_empty(expected));
  }
}
