#include <gtest/gtest.h>

#include <set>

#include "util/bytes.hpp"
#include "util/crypto.hpp"

namespace parley::util {
namespace {

TEST(Bytes, RoundTripsEveryKind) {
  std::string buf;
  byte_writer w(buf);
  w.put_varint(0);
  w.put_varint(300);
  w.put_varint(~0ull);
  w.put_signed(-5);
  w.put_signed(INT64_MIN);
  w.put_fixed64_be(0x0102030405060708ull);
  w.put_string("hello");
  w.put_raw("tail");

  byte_reader r(buf);
  std::uint64_t u;
  std::int64_t s;
  std::string str;
  ASSERT_TRUE(r.get_varint(u));
  EXPECT_EQ(u, 0u);
  ASSERT_TRUE(r.get_varint(u));
  EXPECT_EQ(u, 300u);
  ASSERT_TRUE(r.get_varint(u));
  EXPECT_EQ(u, ~0ull);
  ASSERT_TRUE(r.get_signed(s));
  EXPECT_EQ(s, -5);
  ASSERT_TRUE(r.get_signed(s));
  EXPECT_EQ(s, INT64_MIN);
  ASSERT_TRUE(r.get_fixed64_be(u));
  EXPECT_EQ(u, 0x0102030405060708ull);
  ASSERT_TRUE(r.get_string(str));
  EXPECT_EQ(str, "hello");
  EXPECT_EQ(r.rest(), "tail");
}

TEST(Bytes, BigEndianSortsNumerically) {
  std::string a, b;
  byte_writer(a).put_fixed64_be(255);
  byte_writer(b).put_fixed64_be(256);
  EXPECT_LT(a, b);
}

TEST(Bytes, TruncatedInputFailsAndStaysFailed) {
  std::string buf;
  byte_writer(buf).put_string("hello world");
  buf.resize(4);
  byte_reader r(buf);
  std::string s;
  EXPECT_FALSE(r.get_string(s));
  std::uint64_t u;
  EXPECT_FALSE(r.get_fixed64_be(u));
  EXPECT_FALSE(r.ok());
  const std::string eleven_continuations(11, '\xff');
  byte_reader overlong(eleven_continuations);
  EXPECT_FALSE(overlong.get_varint(u));
}

TEST(Crypto, IdsAreDistinctAndWellFormed) {
  init_crypto();
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = random_id('u');
    ASSERT_EQ(id.size(), 27u);
    ASSERT_EQ(id[0], 'u');
    for (char c : id.substr(1)) ASSERT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(random_token().size(), 43u);
  EXPECT_NE(random_token(), random_token());
}

TEST(Crypto, Sha256MatchesKnownVector) {
  EXPECT_EQ(to_hex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, StreamedSha256EqualsOneShot) {
  std::string data(100'000, 'x');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  util::sha256_stream s;
  for (std::size_t at = 0; at < data.size(); at += 977)
    s.update(std::string_view(data).substr(at, 977));
  EXPECT_EQ(util::to_hex(s.finish()), util::to_hex(util::sha256(data)));
  util::sha256_stream empty;
  EXPECT_EQ(util::to_hex(empty.finish()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// RFC 4231 test cases 2 (short key) and 6 (key longer than the block).
TEST(Crypto, HmacSha256MatchesRfc4231) {
  EXPECT_EQ(util::to_hex(util::hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(util::to_hex(util::hmac_sha256(
                std::string(131, '\xaa'),
                "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

// RFC 4648 §10 test vectors.
TEST(Crypto, Base64MatchesRfc4648) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64(std::string("\xfb\xff", 2)), "+/8=");
}

TEST(Crypto, ConstantTimeEquality) {
  EXPECT_TRUE(util::equal_constant_time("", ""));
  EXPECT_TRUE(util::equal_constant_time("abc", "abc"));
  EXPECT_FALSE(util::equal_constant_time("abc", "abd"));
  EXPECT_FALSE(util::equal_constant_time("abc", "abcd"));
}

TEST(Crypto, PasswordHashVerifiesOnlyTheRightPassword) {
  init_crypto();
  auto hash = hash_password("correct horse");
  EXPECT_TRUE(hash.starts_with("$argon2id$"));
  EXPECT_NE(hash.find("m=19456"), std::string::npos);  // 19 MiB
  EXPECT_NE(hash.find("t=2"), std::string::npos);
  EXPECT_TRUE(verify_password(hash, "correct horse"));
  EXPECT_FALSE(verify_password(hash, "correct horsE"));
  EXPECT_NE(hash_password("correct horse"), hash);  // salted
}

}  // namespace
}  // namespace parley::util
