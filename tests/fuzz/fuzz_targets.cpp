// See fuzz_targets.h. No state survives a call.
#include "fuzz_targets.h"

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "api/request.h"
#include "net/dns/dns_message.h"
#include "spec/loader.h"

namespace stack::fuzz {

void api_request(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  // The first byte sets the size of the pieces the bytes arrive in: the reader must give the
  // same answer however a request is cut.
  const size_t piece = data[0] % 64 + 1;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  api::RequestReader reader;
  while (!rest.empty() && reader.state() == api::RequestReader::State::need_more) {
    reader.feed(rest.substr(0, piece));
    rest.remove_prefix(std::min(piece, rest.size()));
  }
  if (reader.state() == api::RequestReader::State::need_more) reader.finish();
  if (reader.state() != api::RequestReader::State::done) {
    (void)reader.error().status;
    return;
  }
  api::Request request = reader.take();
  auto target = api::parse_target(request.target);
  if (!target) return;
  (void)api::allow_header(api::allowed_methods(target->path));
  for (const char* key : {"tail", "index", "private_port"}) (void)target->integer(key, 0);
  auto body = nlohmann::json::parse(request.body, nullptr, false);
  if (!body.is_object()) return;
  // What the routes read from a body; a wrong type throws, which the router turns into a 400.
  try {
    for (const auto& f : body.value("files", nlohmann::json::array())) (void)f.get<std::string>();
    const auto env = body.value("environment", nlohmann::json::object());  // items() borrows
    for (const auto& [k, v] : env.items()) (void)v.get<std::string>();
    (void)body.value("services", std::vector<std::string>{});
    (void)body.value("wait_timeout", 300);
    (void)body.value("max_bytes", std::uint64_t{0});
  } catch (const std::exception&) {
  }
}

void dns_message(const std::uint8_t* data, std::size_t size) {
  namespace dns = net::dns;
  std::span<const std::uint8_t> wire(data, size);
  auto c = dns::classify_message(wire);
  if (c.kind == dns::Classified::Kind::kQuery && c.query) {
    std::vector<dns::Ipv4> addresses(3);
    for (size_t i = 0; i < addresses.size(); ++i)
      addresses[i] = *dns::Ipv4::parse("10.89.0." + std::to_string(i + 2));
    (void)c.query->reply(dns::Rcode::kNoError, addresses, c.query->max_udp_size(), 5);
    (void)c.query->reply(dns::Rcode::kNxDomain, {}, dns::kClassicUdpSize, 0, true);
  }
  (void)dns::header_reply(wire, dns::Rcode::kServFail);
  (void)dns::wire_id(wire);
  (void)dns::is_response_to(wire, 0x1234);
  (void)dns::is_truncated(wire);
  (void)dns::wire_rcode(wire);
  if (size >= dns::kHeaderSize) {
    dns::Wire copy(data, data + size);
    dns::set_wire_id(copy, 0xbeef);
  }
  (void)dns::parse_response(wire);
}

// The stack file's directory: one that does not exist, so no .env or relative env_file,
// include or extends file is ever found, and nothing is left behind.
constexpr const char* kNoDirectory = "/nonexistent/stack-fuzz";

void stack_file(const std::uint8_t* data, std::size_t size) {
  spec::LoadOptions opts;
  opts.working_dir = kNoDirectory;
  opts.files = {"-"};
  opts.stdin_text = std::string(reinterpret_cast<const char*>(data), size);
  opts.environment = {{"HOME", "/root"}, {"TAG", "1.0"}, {"EMPTY", ""}, {"PORT", "8080"}};
  opts.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto stack = spec::load(opts);
  if (!stack) return;
  auto doc = spec::stack_json(*stack);
  (void)spec::render_yaml(doc);
  (void)spec::render_json(doc);
  for (const auto& s : stack->services) (void)spec::config_hash(s);
  (void)spec::check_supported(*stack);
}

}  // namespace stack::fuzz
