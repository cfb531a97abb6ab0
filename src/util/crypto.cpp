#include "util/crypto.hpp"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>

namespace parley::util {

namespace {
// OWASP's argon2id minimum: 19 MiB, 2 iterations.
constexpr unsigned long long kPwhashOps = 2;
constexpr std::size_t kPwhashMem = 19u * 1024u * 1024u;
}  // namespace

void init_crypto() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

std::string to_hex(const std::uint8_t* data, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(size * 2, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 0xf];
  }
  return out;
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  return to_hex(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
}

std::string random_id(char prefix) {
  std::uint8_t raw[16];
  randombytes_buf(raw, sizeof raw);
  return derived_id(prefix, raw);
}

std::string derived_id(char prefix, const std::uint8_t* data16) {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::uint8_t raw[17] = {};  // 26 digits of 5 bits hold 130 bits: pad the 128 with zeros
  std::copy(data16, data16 + 16, raw);
  std::string out(1, prefix);
  out.reserve(27);
  unsigned buffer = 0;
  int bits = 0;
  std::size_t at = 0;
  while (out.size() < 27) {
    if (bits < 5) {
      buffer = (buffer << 8) | raw[at++];
      bits += 8;
    }
    out.push_back(alphabet[(buffer >> (bits - 5)) & 31]);
    bits -= 5;
  }
  return out;
}

std::string base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the encoder's terminating NUL
  return out;
}

std::string random_token() {
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  char out[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(out, sizeof out, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return out;
}

sha256_digest sha256(std::string_view data) {
  sha256_digest d;
  crypto_hash_sha256(d.data(), reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return d;
}

static_assert(sizeof(crypto_hash_sha256_state) <= 128, "sha256_stream::state_ is too small");

sha256_stream::sha256_stream() {
  crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_));
}

sha256_stream::~sha256_stream() { sodium_memzero(state_, sizeof state_); }

void sha256_stream::update(std::string_view data) {
  crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_),
                            reinterpret_cast<const unsigned char*>(data.data()), data.size());
}

sha256_digest sha256_stream::finish() {
  sha256_digest d;
  crypto_hash_sha256_final(reinterpret_cast<crypto_hash_sha256_state*>(state_), d.data());
  return d;
}

sha256_digest hmac_sha256(std::string_view key, std::string_view data) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(data.data()),
                                data.size());
  sha256_digest d;
  crypto_auth_hmacsha256_final(&st, d.data());
  return d;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string hash_password(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), kPwhashOps, kPwhashMem,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("out of memory while hashing a password");
  }
  return out;
}

bool verify_password(std::string_view encoded_hash, std::string_view password) {
  std::string hash(encoded_hash);  // crypto_pwhash_str_verify wants a NUL-terminated string
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::array<std::uint8_t, 16> fingerprint(std::string_view data) {
  std::array<std::uint8_t, 16> out;
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size(), nullptr, 0);
  return out;
}

}  // namespace parley::util
