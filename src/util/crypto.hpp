// Cryptographic helpers on libsodium: random ids and tokens, SHA-256, argon2id password hashes.
//
// Thread safety: all functions are thread-safe. init_crypto() must run once before any other
// (it is idempotent). hash_password() and verify_password() cost ~0.1 s of CPU and ~19 MiB of
// memory each by design: never call them on an I/O thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::util {

void init_crypto();

// `bytes` random bytes as lowercase hex.
std::string random_hex(std::size_t bytes);
// An opaque id: `prefix` followed by 128 random bits in lowercase base32 (26 characters).
std::string random_id(char prefix);
// `prefix` followed by the 16 bytes at `data` in lowercase base32 (26 characters): an id derived
// from other values (a direct chat's id from its two users, say).
std::string derived_id(char prefix, const std::uint8_t* data16);
// `bytes` in standard base64 with padding (RFC 4648 §4).
std::string base64(std::string_view bytes);
// A bearer token: 256 random bits, base64url without padding (43 characters).
std::string random_token();

using sha256_digest = std::array<std::uint8_t, 32>;
sha256_digest sha256(std::string_view data);
std::string to_hex(const std::uint8_t* data, std::size_t size);
inline std::string to_hex(const sha256_digest& d) { return to_hex(d.data(), d.size()); }
// SHA-256 of `data` as 32 raw bytes in a string (how a bearer token is stored and looked up).
inline std::string sha256_bytes(std::string_view data) {
  auto d = sha256(data);
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

// SHA-256 of a stream of bytes fed piece by piece (an upload as it arrives).
class sha256_stream {
 public:
  sha256_stream();
  ~sha256_stream();
  sha256_stream(const sha256_stream&) = delete;
  sha256_stream& operator=(const sha256_stream&) = delete;
  void update(std::string_view data);
  sha256_digest finish();  // once; the stream is spent afterwards

 private:
  alignas(16) unsigned char state_[128];  // crypto_hash_sha256_state (checked in crypto.cpp)
};

// HMAC-SHA256 of `data` under `key` (any length), as 32 raw bytes.
sha256_digest hmac_sha256(std::string_view key, std::string_view data);
// Compares two byte strings in time that depends only on their lengths.
bool equal_constant_time(std::string_view a, std::string_view b);

// argon2id (libsodium crypto_pwhash) with 19 MiB and 2 passes; returns the encoded string that
// carries its own salt and parameters. Throws std::runtime_error only when out of memory.
std::string hash_password(std::string_view password);
bool verify_password(std::string_view encoded_hash, std::string_view password);

// A 16-byte keyed-free fingerprint (BLAKE2b) of `data`, used to compare message contents.
std::array<std::uint8_t, 16> fingerprint(std::string_view data);

}  // namespace parley::util
