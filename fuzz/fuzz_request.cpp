// fuzz_request — libFuzzer target for the WebSocket request decoder (proto::decode_request) and
// the encoders the server answers with (proto/encode.hpp).
//
// Besides "no crash, no leak, no undefined behaviour" (ASan + UBSan), every input checks:
//   - a decode error is answered by error_reply(): one JSON object whose `re` is the frame's id
//     (null when the frame is no object or has no id) and whose `err.code` is bad_request or
//     too_large, with a string message;
//   - a decoded request respects proto::limits (ids 1..64 bytes without NUL, lists within their
//     caps, text within text_max_bytes, titles 1..100 code points, history limit 1..100, ...);
//   - its id_json re-parses to the id the frame carried (doubles: within a few ulps, see
//     same_json);
//   - what it carries round-trips through the encoders: every reply and event built from it
//     parses as JSON and gives back the same strings and numbers (json_writer's escaping).
// A violated property aborts with a message; libFuzzer reports it as a crash with the input.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "chat/error.hpp"
#include "proto/encode.hpp"
#include "proto/request.hpp"

namespace {

namespace json = boost::json;
namespace chat = parley::chat;
namespace proto = parley::proto;

const proto::limits kLimits{};
const proto::wire_codec kCodec;
constexpr chat::time_ms kTs = 1'700'000'000'000;

[[noreturn]] void fail(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz_request: property violated: %.*s\n  %.*s\n",
               static_cast<int>(what.size()), what.data(),
               static_cast<int>(std::min<std::size_t>(detail.size(), 2000)), detail.data());
  std::abort();
}

void expect(bool cond, std::string_view what, std::string_view detail = {}) {
  if (!cond) fail(what, detail);
}

// Parses what an encoder produced: it must be exactly one JSON object.
json::object parse_out(std::string_view s, std::string_view what) {
  json::parse_options opts;
  opts.max_depth = 64;  // the id may be nested 15 deep and is wrapped in the reply
  boost::system::error_code ec;
  auto v = json::parse(s, ec, {}, opts);
  if (ec) fail(std::string(what) + ": output is not JSON (" + ec.message() + ")", s);
  if (!v.is_object()) fail(std::string(what) + ": output is not a JSON object", s);
  return std::move(v.get_object());
}

const json::value& field(const json::object& o, std::string_view key, std::string_view what) {
  auto* v = o.if_contains(key);
  if (!v) fail(std::string(what) + ": no field " + std::string(key), json::serialize(o));
  return *v;
}

const json::object& object_field(const json::object& o, std::string_view key,
                                 std::string_view what) {
  const auto& v = field(o, key, what);
  if (!v.is_object()) fail(std::string(what) + ": " + std::string(key) + " is not an object");
  return v.get_object();
}

void expect_string(const json::object& o, std::string_view key, std::string_view want,
                   std::string_view what) {
  const auto& v = field(o, key, what);
  if (!v.is_string() || std::string_view(v.get_string()) != want)
    fail(std::string(what) + ": " + std::string(key) + " did not round-trip", json::serialize(v));
}

bool same_uint(const json::value& v, std::uint64_t n) {
  if (v.is_uint64()) return v.get_uint64() == n;
  if (v.is_int64()) return v.get_int64() >= 0 && static_cast<std::uint64_t>(v.get_int64()) == n;
  return false;
}

void expect_uint(const json::object& o, std::string_view key, std::uint64_t want,
                 std::string_view what) {
  if (!same_uint(field(o, key, what), want))
    fail(std::string(what) + ": " + std::string(key) + " did not round-trip",
         json::serialize(field(o, key, what)));
}

void expect_string_list(const json::value& v, const std::vector<std::string>& want,
                        std::string_view what) {
  if (!v.is_array() || v.get_array().size() != want.size()) fail(std::string(what) + ": list size");
  for (std::size_t i = 0; i < want.size(); ++i) {
    const auto& item = v.get_array()[i];
    if (!item.is_string() || std::string_view(item.get_string()) != want[i])
      fail(std::string(what) + ": list item did not round-trip", json::serialize(item));
  }
}

// Structural JSON equality in which two doubles may differ by a few ulps. Boost.JSON 1.81's
// number parser is not correctly rounded (`1.281111111111111E38` parses one ulp low), so an id
// that went parse -> serialize -> parse may move by that much; tests/e2e/test_hostile.py
// documents the end-to-end effect. Every other difference counts.
bool same_json(const json::value& a, const json::value& b) {
  if (a.is_double() || b.is_double()) {
    if (!a.is_number() || !b.is_number()) return false;
    double x = a.to_number<double>(), y = b.to_number<double>();
    if (x == y) return true;
    // Boost.JSON 1.81 reads some numbers as NaN (0e400); the server echoes the id's text, so
    // both sides parse alike.
    if (std::isnan(x) && std::isnan(y)) return true;
    if (!std::isfinite(x) || !std::isfinite(y)) return false;
    double lo = x, hi = x;
    for (int i = 0; i < 4; ++i) {
      lo = std::nextafter(lo, -HUGE_VAL);
      hi = std::nextafter(hi, HUGE_VAL);
    }
    return lo <= y && y <= hi;
  }
  if (a.is_array() && b.is_array()) {
    const auto &x = a.get_array(), &y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!same_json(x[i], y[i])) return false;
    return true;
  }
  if (a.is_object() && b.is_object()) {
    const auto &x = a.get_object(), &y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& kv : x) {
      auto* other = y.if_contains(kv.key());
      if (!other || !same_json(kv.value(), *other)) return false;
    }
    return true;
  }
  return a == b;  // int64 and uint64 compare by value
}

// A reply's `re` must be the id the frame carried (null when it had none).
void expect_re(const json::object& reply, const json::value* id, std::string_view what) {
  const auto& re = field(reply, "re", what);
  if (!id || id->is_null()) {
    expect(re.is_null(), std::string(what) + ": re must be null", json::serialize(reply));
  } else if (!same_json(re, *id)) {
    fail(std::string(what) + ": re is not the request's id",
         json::serialize(re) + " vs " + json::serialize(*id));
  }
}

bool valid_id(const std::string& s) {
  return !s.empty() && s.size() <= kLimits.id_max_bytes && s.find('\0') == std::string::npos;
}

void check_ids(const std::vector<std::string>& ids, std::size_t max, std::string_view what) {
  expect(ids.size() <= max, std::string(what) + ": list over its limit");
  for (const auto& s : ids) expect(valid_id(s), std::string(what) + ": invalid id in list", s);
}

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;
  return n;
}

void check_title(const std::string& t) {
  auto n = code_points(t);
  expect(n >= 1 && n <= kLimits.title_max_chars, "title length out of range", t);
  for (unsigned char c : t) expect(c >= 0x20, "title with a control character", t);
}

// Encodes a message (as the domain would after a send or a group change) and checks that the
// stored MSG, the `msg` event, a history page and a chat state all carry it intact.
void round_trip_message(const chat::message& m, const std::string& id_json, const json::value* id) {
  auto encoded = kCodec.encode_message(m);
  auto msg = parse_out(encoded, "encode_message");
  expect_string(msg, "chat", m.chat, "encode_message");
  expect_string(msg, "cid", m.cid, "encode_message");
  expect_string(msg, "from", m.from, "encode_message");
  expect_uint(msg, "seq", m.seq, "encode_message");
  if (m.text) expect_string(msg, "text", *m.text, "encode_message");
  if (m.media) {
    const auto& media = object_field(msg, "media", "encode_message");
    expect_string(media, "media_id", m.media->media_id, "encode_message media");
    expect_string(media, "mime", m.media->mime, "encode_message media");
    expect_uint(media, "size", m.media->size, "encode_message media");
    if (m.media->name) expect_string(media, "name", *m.media->name, "encode_message media");
  }
  if (m.reply_to) expect_uint(msg, "reply_to", *m.reply_to, "encode_message");
  if (m.system) {
    const auto& sys = object_field(msg, "system", "encode_message");
    expect_string(sys, "event", m.system->event, "encode_message system");
    if (m.system->users)
      expect_string_list(field(sys, "users", "encode_message system"), *m.system->users,
                         "encode_message system users");
    if (m.system->title) expect_string(sys, "title", *m.system->title, "encode_message system");
  }

  auto event = parse_out(*kCodec.message_event(encoded), "message_event");
  expect_string(event, "ev", "msg", "message_event");
  expect(json::value(event).as_object().size() == msg.size() + 1, "message_event: fields lost");
  if (m.text) expect_string(event, "text", *m.text, "message_event");

  chat::history_result page{{encoded, encoded}, true};
  auto history = parse_out(proto::history_reply(id_json, page), "history_reply");
  expect_re(history, id, "history_reply");
  const auto& messages =
      field(object_field(history, "ok", "history_reply"), "messages", "history_reply");
  expect(messages.is_array() && messages.get_array().size() == 2 &&
             messages.get_array()[1] == json::value(msg),
         "history_reply: messages did not round-trip");

  chat::chat_state state;
  state.chat.id = m.chat;
  state.last_msg = encoded;
  auto chats = parse_out(proto::chats_reply(id_json, {state}), "chats_reply");
  expect_re(chats, id, "chats_reply");
}

void round_trip_chat(const chat::chat_record& c, const std::string& id_json,
                     const json::value* id) {
  auto reply = parse_out(proto::chat_reply(id_json, c), "chat_reply");
  expect_re(reply, id, "chat_reply");
  const auto& got = object_field(object_field(reply, "ok", "chat_reply"), "chat", "chat_reply");
  expect_string(got, "chat", c.id, "chat_reply");
  if (c.kind == chat::chat_kind::group) expect_string(got, "title", c.title, "chat_reply");
  const auto& members = field(got, "members", "chat_reply");
  expect(members.is_array() && members.get_array().size() == c.members.size(),
         "chat_reply: members lost");
  for (std::size_t i = 0; i < c.members.size(); ++i) {
    const auto& m = members.get_array()[i];
    expect(m.is_object(), "chat_reply: member is not an object");
    expect_string(m.get_object(), "user_id", c.members[i].user_id, "chat_reply member");
  }
  auto event = parse_out(*kCodec.chat_event(c), "chat_event");
  expect_string(event, "ev", "chat", "chat_event");
  expect_string(event, "chat", c.id, "chat_event");
}

chat::chat_record group_of(const std::string& id, const std::string& title,
                           const std::vector<std::string>& users) {
  chat::chat_record c;
  c.id = id;
  c.kind = chat::chat_kind::group;
  c.title = title;
  c.members.push_back({"u-fuzz", chat::member_role::admin});
  for (const auto& u : users) c.members.push_back({u, chat::member_role::member});
  c.last_seq = 1;
  c.created = kTs;
  return c;
}

chat::message system_message(const std::string& chat_id, std::string event,
                             std::optional<std::vector<std::string>> users,
                             std::optional<std::string> title) {
  chat::message m;
  m.chat = chat_id;
  m.seq = 1;
  m.ts = kTs;
  m.from = "u-fuzz";
  m.cid = "sys-1";
  m.kind = chat::message_kind::system;
  m.system = chat::system_event{std::move(event), "u-fuzz", std::move(users), std::move(title)};
  return m;
}

void check_cursor(const proto::cursor_args& a, const std::string& id_json, const json::value* id,
                  std::string_view kind) {
  expect(valid_id(a.chat), "cursor: invalid chat id", a.chat);
  auto receipt = parse_out(*kCodec.receipt_event(a.chat, "u-fuzz", kind, a.seq), "receipt_event");
  expect_string(receipt, "chat", a.chat, "receipt_event");
  expect_uint(receipt, "seq", a.seq, "receipt_event");
  auto sync = parse_out(*kCodec.read_sync_event(a.chat, a.seq), "read_sync_event");
  expect_uint(sync, "seq", a.seq, "read_sync_event");
  auto ok = parse_out(proto::empty_ok_reply(id_json), "empty_ok_reply");
  expect_re(ok, id, "empty_ok_reply");
}

void check_request(const proto::request& req, const json::value* id) {
  const auto& id_json = req.id_json;
  if (!id || id->is_null()) {
    expect(id_json.empty(), "id_json must be empty without an id", id_json);
  } else {
    boost::system::error_code ec;
    auto reparsed = json::parse(id_json, ec);
    // Every reply echoes id_json as `re`: it must be JSON (an overflowing number is not).
    expect(!ec, "id_json is not JSON: the reply's `re` would not be JSON", id_json);
    expect(same_json(reparsed, *id), "id_json does not re-parse to the frame's id", id_json);
  }
  auto ping = parse_out(proto::ping_reply(id_json, kTs), "ping_reply");
  expect_re(ping, id, "ping_reply");

  std::visit(
      [&](const auto& a) {
        using A = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<A, proto::auth_args>) {
          expect(!a.token.empty() && a.token.size() <= kLimits.token_max_bytes, "auth: token size");
          // The token as if it were an identity: arbitrary strings through the writer.
          auto reply =
              parse_out(proto::auth_reply(id_json, {a.token, a.token}, 5000, kTs), "auth_reply");
          expect_re(reply, id, "auth_reply");
          expect_string(object_field(reply, "ok", "auth_reply"), "user_id", a.token, "auth_reply");
        } else if constexpr (std::is_same_v<A, proto::users_get_args>) {
          check_ids(a.values, kLimits.users_get_max, "users.get");
          std::vector<chat::user_public> users;
          for (const auto& v : a.values) users.push_back({v, v, v});
          auto reply = parse_out(proto::users_reply(id_json, users), "users_reply");
          expect_re(reply, id, "users_reply");
          const auto& list =
              field(object_field(reply, "ok", "users_reply"), "users", "users_reply");
          expect(list.is_array() && list.get_array().size() == users.size(), "users_reply: size");
          for (std::size_t i = 0; i < users.size(); ++i)
            expect_string(list.get_array()[i].as_object(), "display_name", a.values[i],
                          "users_reply");
        } else if constexpr (std::is_same_v<A, proto::chat_open_args>) {
          expect(valid_id(a.peer), "chat.open: invalid peer", a.peer);
          chat::chat_record c;
          c.id = "d-fuzz";
          c.members = {{"u-fuzz", chat::member_role::member}, {a.peer, chat::member_role::member}};
          round_trip_chat(c, id_json, id);
        } else if constexpr (std::is_same_v<A, chat::send_request>) {
          expect(valid_id(a.chat) && valid_id(a.cid), "send: invalid chat or cid");
          expect(!a.text || a.text->size() <= kLimits.text_max_bytes, "send: text too long");
          expect(a.media || (a.text && !a.text->empty()), "send without text or media");
          if (a.media) {
            expect(valid_id(a.media->media_id), "send: invalid media_id", a.media->media_id);
            expect(!a.media->mime.empty() && a.media->mime.size() <= kLimits.mime_max_bytes,
                   "send: mime size");
            expect(!a.media->name || a.media->name->size() <= kLimits.media_name_max_bytes,
                   "send: media name size");
          }
          chat::message m;
          m.chat = a.chat;
          m.seq = a.reply_to.value_or(0) + 1;  // may wrap at 2^64 - 1: unsigned, defined
          m.ts = kTs;
          m.from = "u-fuzz";
          m.cid = a.cid;
          m.kind = a.media ? chat::message_kind::media : chat::message_kind::text;
          m.text = a.text;
          m.media = a.media;
          m.reply_to = a.reply_to;
          round_trip_message(m, id_json, id);
          auto reply =
              parse_out(proto::send_reply(id_json, {a.chat, m.seq, kTs, true}), "send_reply");
          expect_re(reply, id, "send_reply");
          expect_string(object_field(reply, "ok", "send_reply"), "chat", a.chat, "send_reply");
        } else if constexpr (std::is_same_v<A, chat::history_request>) {
          expect(valid_id(a.chat), "history: invalid chat", a.chat);
          expect(a.limit >= 1 && a.limit <= 100, "history: limit out of range");
        } else if constexpr (std::is_same_v<A, proto::ack_args>) {
          check_cursor(a, id_json, id, "delivered");
        } else if constexpr (std::is_same_v<A, proto::read_args>) {
          check_cursor(a, id_json, id, "read");
        } else if constexpr (std::is_same_v<A, proto::receipts_args>) {
          expect(valid_id(a.chat), "receipts: invalid chat", a.chat);
          chat::receipts_result r{{a.chat}, {a.chat}};
          auto reply = parse_out(proto::receipts_reply(id_json, r), "receipts_reply");
          expect_re(reply, id, "receipts_reply");
        } else if constexpr (std::is_same_v<A, proto::typing_args>) {
          expect(valid_id(a.chat), "typing: invalid chat", a.chat);
          auto ev = parse_out(*kCodec.typing_event(a.chat, "u-fuzz", a.on), "typing_event");
          expect_string(ev, "chat", a.chat, "typing_event");
          expect(field(ev, "on", "typing_event") == json::value(a.on), "typing_event: on");
        } else if constexpr (std::is_same_v<A, chat::group_create_request>) {
          check_title(a.title);
          check_ids(a.members, kLimits.group_members_max, "group.create members");
          round_trip_chat(group_of("g-fuzz", a.title, a.members), id_json, id);
          round_trip_message(system_message("g-fuzz", "created", a.members, a.title), id_json, id);
        } else if constexpr (std::is_same_v<A, proto::group_add_args> ||
                             std::is_same_v<A, proto::group_remove_args>) {
          expect(valid_id(a.chat), "group.add/remove: invalid chat", a.chat);
          check_ids(a.users, kLimits.group_members_max, "group.add/remove users");
          round_trip_chat(group_of(a.chat, "t", a.users), id_json, id);
          round_trip_message(system_message(a.chat, "added", a.users, std::nullopt), id_json, id);
        } else if constexpr (std::is_same_v<A, proto::group_leave_args>) {
          expect(valid_id(a.chat), "group.leave: invalid chat", a.chat);
          round_trip_message(system_message(a.chat, "left", std::nullopt, std::nullopt), id_json,
                             id);
        } else if constexpr (std::is_same_v<A, chat::group_update_request>) {
          expect(valid_id(a.chat), "group.update: invalid chat", a.chat);
          if (a.title) check_title(*a.title);
          check_ids(a.admins_add, kLimits.group_members_max, "group.update admins_add");
          check_ids(a.admins_remove, kLimits.group_members_max, "group.update admins_remove");
          round_trip_chat(group_of(a.chat, a.title.value_or("t"), a.admins_add), id_json, id);
          round_trip_message(system_message(a.chat, "title", a.admins_remove, a.title), id_json,
                             id);
        } else if constexpr (std::is_same_v<A, proto::presence_sub_args>) {
          check_ids(a.users, kLimits.presence_sub_max, "presence.sub users");
          chat::presence_result r;
          for (const auto& u : a.users) r.presence.push_back({u, true, kTs});
          r.denied = a.users;
          auto reply = parse_out(proto::presence_reply(id_json, r), "presence_reply");
          expect_re(reply, id, "presence_reply");
          expect_string_list(
              field(object_field(reply, "ok", "presence_reply"), "denied", "presence_reply"),
              a.users, "presence_reply denied");
          for (const auto& p : r.presence) {
            auto ev = parse_out(*kCodec.presence_event(p), "presence_event");
            expect_string(ev, "user_id", p.user_id, "presence_event");
          }
        } else if constexpr (std::is_same_v<A, proto::media_url_args>) {
          expect(valid_id(a.media_id), "media.url: invalid media_id", a.media_id);
          auto reply = parse_out(proto::media_url_reply(id_json, "/v1/media/" + a.media_id, kTs),
                                 "media_url_reply");
          expect_re(reply, id, "media_url_reply");
        } else {
          static_assert(std::is_same_v<A, proto::ping_args> ||
                        std::is_same_v<A, proto::chats_args>);
        }
      },
      req.args);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto decoded = proto::decode_request(frame, kLimits);

  // The frame as an independent parse sees it (same depth limit as the decoder), for its id.
  json::parse_options opts;
  opts.max_depth = 16;
  boost::system::error_code ec;
  auto doc = json::parse(frame, ec, {}, opts);
  const json::value* id = nullptr;
  if (!ec && doc.is_object()) id = doc.get_object().if_contains("id");

  if (auto* bad = std::get_if<proto::decode_error>(&decoded)) {
    expect(bad->err.code == chat::errc::bad_request || bad->err.code == chat::errc::too_large,
           "decode error with a code other than bad_request/too_large", bad->err.message);
    auto reply = parse_out(proto::error_reply(bad->id_json, bad->err), "error_reply");
    expect_re(reply, id, "error_reply");
    const auto& err = object_field(reply, "err", "error_reply");
    expect_string(err, "code", chat::to_code(bad->err.code), "error_reply");
    expect_string(err, "message", bad->err.message, "error_reply");
    // The same id through the rate-limit answer, which adds retry_ms.
    chat::error limited = chat::make_error(chat::errc::rate_limited, "slow down");
    limited.retry_ms = 50;
    auto lim = parse_out(proto::error_reply(bad->id_json, limited), "error_reply rate_limited");
    expect_uint(object_field(lim, "err", "error_reply"), "retry_ms", 50, "error_reply");
    return 0;
  }
  expect(!ec && doc.is_object(), "decoded a frame that is not a JSON object", frame);
  check_request(std::get<proto::request>(decoded), id);
  return 0;
}
