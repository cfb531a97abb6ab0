#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "proto/encode.hpp"
#include "proto/http_body.hpp"
#include "proto/json_writer.hpp"
#include "proto/request.hpp"

namespace parley::proto {
namespace {

using chat::errc;

const limits kLimits;

request ok(std::string_view frame) {
  auto r = decode_request(frame, kLimits);
  auto* req = std::get_if<request>(&r);
  EXPECT_NE(req, nullptr) << frame << " -> "
                          << (req ? "" : std::get<decode_error>(r).err.message);
  return req ? *req : request{};
}

decode_error bad(std::string_view frame, errc code = errc::bad_request) {
  auto r = decode_request(frame, kLimits);
  auto* e = std::get_if<decode_error>(&r);
  EXPECT_NE(e, nullptr) << frame;
  if (!e) return {};
  EXPECT_EQ(e->err.code, code) << frame << " -> " << e->err.message;
  return *e;
}

TEST(Decode, SendWithEveryField) {
  auto r = ok(R"({"op":"send","id":7,"chat":"c1","cid":"x","text":"hi","reply_to":3})");
  EXPECT_EQ(r.id_json, "7");
  auto& s = std::get<chat::send_request>(r.args);
  EXPECT_EQ(s.chat, "c1");
  EXPECT_EQ(s.cid, "x");
  EXPECT_EQ(*s.text, "hi");
  EXPECT_EQ(*s.reply_to, 3u);
}

TEST(Decode, IdsOfEveryJsonTypeAreEchoed) {
  EXPECT_EQ(ok(R"({"op":"ping","id":"a\"b"})").id_json, R"("a\"b")");
  EXPECT_EQ(ok(R"({"op":"ping","id":[1,{"x":null}]})").id_json, R"([1,{"x":null}])");
  EXPECT_EQ(ok(R"({"op":"ping","id":true})").id_json, "true");
  EXPECT_EQ(ok(R"({"op":"ping","id":1.5})").id_json, "1.5");
  // The client's own text, whatever the parser would make of it.
  EXPECT_EQ(ok(R"({"op":"ping","id":1e400})").id_json, "1e400");
  EXPECT_EQ(ok(R"({"op":"ping","id":123456789.123456789})").id_json, "123456789.123456789");
  EXPECT_EQ(ok(R"({"op":"ping", "id" : [1, "a]\"}", {"b":2}] })").id_json,
            R"([1, "a]\"}", {"b":2}])");
  EXPECT_EQ(ok(R"({"id":1,"op":"ping","id":2})").id_json, "2");  // the last of duplicates
  EXPECT_EQ(ok(R"({"x":{"id":9},"op":"ping","id":3})").id_json, "3");  // top level only
  EXPECT_EQ(ok(R"({"op":"ping","\u0069d":7})").id_json, "7");  // escaped key: re-serialized
  EXPECT_EQ(ok(R"({"op":"ping","id":null})").id_json, "");
  EXPECT_EQ(ok(R"({"op":"ping"})").id_json, "");
}

TEST(Decode, MalformedFramesAreBadRequest) {
  bad(R"({"op":"ping")");
  bad("[1,2]");
  bad("42");
  bad(R"("ping")");
  bad("");
  bad(R"({"op":7})");
  bad(R"({"id":1})");
  EXPECT_EQ(bad(R"({"op":"nope","id":5})").id_json, "5");
}

TEST(Decode, DeepNestingIsRefusedWithoutRecursion) {
  std::string deep(100000, '[');
  bad(deep);
  std::string deep_obj = R"({"op":"ping","x":)" + std::string(100000, '[') +
                         std::string(100000, ']') + "}";
  bad(deep_obj);
}

TEST(Decode, IntegersOnlyWhereIntegersBelong) {
  ok(R"({"op":"ack","chat":"c","seq":0})");
  EXPECT_EQ(std::get<ack_args>(ok(R"({"op":"ack","chat":"c","seq":-0})").args).seq, 0u);
  EXPECT_EQ(std::get<ack_args>(ok(R"({"op":"ack","chat":"c","seq":18446744073709551615})").args)
                .seq,
            18446744073709551615ull);
  bad(R"({"op":"ack","chat":"c","seq":1.5})");
  bad(R"({"op":"ack","chat":"c","seq":1e400})");
  bad(R"({"op":"ack","chat":"c","seq":-1})");
  bad(R"({"op":"ack","chat":"c","seq":"3"})");
  bad(R"({"op":"ack","chat":"c","seq":18446744073709551616})");
  bad(R"({"op":"ack","chat":"c"})");
  bad(R"({"op":"ack","chat":5,"seq":1})");
}

TEST(Decode, SendArgumentRules) {
  bad(R"({"op":"send","chat":"c","cid":"x"})");
  bad(R"({"op":"send","chat":"c","cid":"x","text":""})");
  bad(R"({"op":"send","chat":"c","cid":"","text":"a"})");
  bad(R"({"op":"send","chat":"c","cid":")" + std::string(65, 'x') + R"(","text":"a"})");
  ok(R"({"op":"send","chat":"c","cid":")" + std::string(64, 'x') + R"(","text":"a"})");
  bad(R"({"op":"send","chat":"c","cid":"x","text":")" + std::string(16 * 1024 + 1, 'a') + "\"}",
      errc::too_large);
  ok(R"({"op":"send","chat":"c","cid":"x","text":")" + std::string(16 * 1024, 'a') + "\"}");
  bad(R"({"op":"send","chat":"c","cid":"a\u0000b","text":"a"})");
  auto m = ok(R"({"op":"send","chat":"c","cid":"x","media":{"media_id":"m","mime":"image/png","size":3}})");
  EXPECT_EQ(std::get<chat::send_request>(m.args).media->size, 3u);
  bad(R"({"op":"send","chat":"c","cid":"x","media":"m"})");
  // Client-supplied from/seq/ts are ignored.
  ok(R"({"op":"send","chat":"c","cid":"x","text":"a","from":"u","seq":9,"ts":1})");
}

TEST(Decode, HistoryLimitBounds) {
  EXPECT_EQ(std::get<chat::history_request>(ok(R"({"op":"history","chat":"c"})").args).limit, 50u);
  ok(R"({"op":"history","chat":"c","limit":1})");
  ok(R"({"op":"history","chat":"c","limit":100})");
  bad(R"({"op":"history","chat":"c","limit":0})");
  bad(R"({"op":"history","chat":"c","limit":101})");
}

TEST(Decode, UsersGetNeedsExactlyOneList) {
  bad(R"({"op":"users.get"})");
  bad(R"({"op":"users.get","usernames":[],"ids":[]})");
  std::string many = R"({"op":"users.get","ids":[)";
  for (int i = 0; i < 101; ++i) many += (i ? ",\"u\"" : "\"u\"");
  bad(many + "]}", errc::too_large);
  auto r = ok(R"({"op":"users.get","usernames":["alice","bob"]})");
  EXPECT_EQ(std::get<users_get_args>(r.args).values.size(), 2u);
  bad(R"({"op":"users.get","ids":[1]})");
}

TEST(JsonWriter, EscapesEverythingThatNeedsIt) {
  std::string out;
  json_writer::append_string(out, std::string("a\"\\\n\x01\0z\xe2\x80\xa8", 10));
  EXPECT_EQ(out, R"("a\"\\\n\u0001\u0000z\u2028")");
  auto parsed = boost::json::parse(out);
  EXPECT_EQ(parsed.as_string().size(), 10u);
}

TEST(JsonWriter, CopiesEverythingElseAsItIs) {
  std::string out;
  // \r, \t, U+2029 and 0x1f are escaped; DEL, '/', the euro sign (e2 82 ac, whose first byte
  // begins U+2028 too) and a lone e2 at the end are copied.
  json_writer::append_string(out, "\r\t\x1f\x7f/\xe2\x82\xac\xe2\x80\xa9x\xe2");
  EXPECT_EQ(out, "\"\\r\\t\\u001f\x7f/\xe2\x82\xac\\u2029x\xe2\"");
  out.clear();
  std::string plain(1000, 'p');
  json_writer::append_string(out, plain);
  EXPECT_EQ(out, "\"" + plain + "\"");
}

TEST(Encode, MessageEventSharesTheStoredEncoding) {
  wire_codec codec;
  chat::message m;
  m.chat = "c";
  m.seq = 2;
  m.ts = 5;
  m.from = "u";
  m.cid = "x";
  m.text = "<img src=x>";
  auto stored = codec.encode_message(m);
  auto frame = codec.message_event(stored);
  auto v = boost::json::parse(*frame).as_object();
  EXPECT_EQ(v.at("ev").as_string(), "msg");
  EXPECT_EQ(v.at("seq").as_int64(), 2);
  EXPECT_EQ(v.at("text").as_string(), "<img src=x>");
  EXPECT_EQ(v.at("kind").as_string(), "text");
}

TEST(Encode, ErrorReplyCarriesNullWithoutId) {
  auto e = error_reply("", chat::make_error(errc::bad_request, "x"));
  EXPECT_EQ(e, R"({"re":null,"err":{"code":"bad_request","message":"x"}})");
  chat::error limited = chat::make_error(errc::rate_limited, "slow down");
  limited.retry_ms = 50;
  EXPECT_NE(error_reply("1", limited).find(R"("retry_ms":50)"), std::string::npos);
}

TEST(HttpBody, RegisterValidation) {
  EXPECT_TRUE(std::holds_alternative<register_body>(
      decode_register(R"({"username":"al.ice_1","password":"12345678"})")));
  auto is_bad = [](std::string_view body) {
    auto r = decode_register(body);
    return std::holds_alternative<chat::error>(r) &&
           std::get<chat::error>(r).code == errc::bad_request;
  };
  EXPECT_TRUE(is_bad(R"({"username":"Al","password":"12345678"})"));
  EXPECT_TRUE(is_bad(R"({"username":"ALICE","password":"12345678"})"));
  EXPECT_TRUE(is_bad(R"({"username":"alice","password":"1234567"})"));
  EXPECT_TRUE(is_bad(R"({"username":"alice","password":")" + std::string(257, 'p') + "\"}"));
  EXPECT_TRUE(is_bad(R"({"username":"alice","password":"12345678","display_name":""})"));
  EXPECT_TRUE(is_bad(R"({"username":"alice","password":12345678})"));
  EXPECT_TRUE(is_bad("not json"));
  EXPECT_TRUE(is_bad("[]"));
  // 64 code points of 3 bytes each are fine; 65 are not.
  std::string snow;
  for (int i = 0; i < 64; ++i) snow += "\xe2\x98\x83";
  EXPECT_FALSE(is_bad(R"({"username":"alice","password":"12345678","display_name":")" + snow +
                      "\"}"));
  EXPECT_TRUE(is_bad(R"({"username":"alice","password":"12345678","display_name":")" + snow +
                     "\xe2\x98\x83\"}"));
}

}  // namespace
}  // namespace parley::proto
