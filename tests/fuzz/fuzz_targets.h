// The fuzz targets' bodies: one function per parser that hostile input reaches, taking the
// fuzzer's bytes. Built twice: with clang and libFuzzer (tests/fuzz/targets, label fuzz), and
// into the unit tests, which replay every file of tests/fuzz/corpus/<target>/ through them.
// A target returns normally on any input; a crash, a sanitizer report or a hang is a bug.
#pragma once

#include <cstddef>
#include <cstdint>

namespace stack::fuzz {

// The API's request reading: bytes fed in pieces to RequestReader, then the target decoded,
// the route looked up and the body parsed as the router does.
void api_request(const std::uint8_t* data, std::size_t size);

// The embedded DNS server's wire parsing: a datagram classified, answered if it is a query,
// and read as a response (the forwarder's side).
void dns_message(const std::uint8_t* data, std::size_t size);

// A stack file given on stdin ("-f -"): loaded (YAML, interpolation, merge keys, validation,
// normalisation) with a time budget, then rendered as `stack config` would.
void stack_file(const std::uint8_t* data, std::size_t size);

}  // namespace stack::fuzz
