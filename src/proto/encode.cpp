#include "proto/encode.hpp"

#include <memory>

namespace parley::proto {

namespace {
std::string_view kind_name(chat::chat_kind k) {
  return k == chat::chat_kind::group ? "group" : "direct";
}
std::string_view role_name(chat::member_role r) {
  return r == chat::member_role::admin ? "admin" : "member";
}
std::string_view message_kind_name(chat::message_kind k) {
  switch (k) {
    case chat::message_kind::text: return "text";
    case chat::message_kind::media: return "media";
    case chat::message_kind::system: return "system";
  }
  return "text";
}
std::string_view id_or_null(std::string_view id_json) {
  return id_json.empty() ? std::string_view("null") : id_json;
}
void write_chat_fields(json_writer& w, const chat::chat_record& c) {
  w.key("chat").value(c.id).key("kind").value(kind_name(c.kind));
  if (c.kind == chat::chat_kind::group) w.key("title").value(c.title);
  w.key("members").begin_array();
  for (const auto& m : c.members) {
    w.begin_object().key("user_id").value(m.user_id).key("role").value(role_name(m.role));
    w.end_object();
  }
  w.end_array();
  w.key("last_seq").value(c.last_seq).key("created").value(c.created);
}
}  // namespace

std::string empty_ok_reply(std::string_view id_json) {
  return ok_reply(id_json, [](json_writer& w) { w.begin_object().end_object(); });
}

std::string error_reply(std::string_view id_json, const chat::error& err) {
  std::string out;
  json_writer w(out);
  w.begin_object().key("re").raw(id_or_null(id_json)).key("err").begin_object();
  w.key("code").value(chat::to_code(err.code)).key("message").value(err.message);
  if (err.code == chat::errc::rate_limited) w.key("retry_ms").value(err.retry_ms);
  w.end_object().end_object();
  return out;
}

void write_chat(json_writer& w, const chat::chat_record& c) {
  w.begin_object();
  write_chat_fields(w, c);
  w.end_object();
}

void write_chat_state(json_writer& w, const chat::chat_state& s) {
  w.begin_object();
  write_chat_fields(w, s.chat);
  w.key("read_seq").value(s.read_seq).key("delivered_seq").value(s.delivered_seq);
  w.key("unread").value(s.unread).key("last_msg");
  if (s.last_msg) {
    w.raw(*s.last_msg);
  } else {
    w.null();
  }
  w.end_object();
}

void write_user(json_writer& w, const chat::user_public& u) {
  w.begin_object().key("user_id").value(u.user_id).key("username").value(u.username);
  w.key("display_name").value(u.display_name).end_object();
}

std::string auth_reply(std::string_view id_json, const chat::session_info& who, int heartbeat_ms,
                       chat::time_ms server_time) {
  return ok_reply(id_json, [&](json_writer& w) {
    w.begin_object().key("user_id").value(who.user_id).key("device_id").value(who.device_id);
    w.key("heartbeat_ms").value(heartbeat_ms).key("server_time").value(server_time);
    w.end_object();
  });
}

std::string ping_reply(std::string_view id_json, chat::time_ms server_time) {
  return ok_reply(id_json,
                  [&](json_writer& w) { w.begin_object().key("t").value(server_time).end_object(); });
}

std::string users_reply(std::string_view id_json, const std::vector<chat::user_public>& users) {
  return ok_reply(id_json, [&](json_writer& w) {
    w.begin_object().key("users").begin_array();
    for (const auto& u : users) write_user(w, u);
    w.end_array().end_object();
  });
}

std::string chat_reply(std::string_view id_json, const chat::chat_record& c) {
  return ok_reply(id_json, [&](json_writer& w) {
    w.begin_object().key("chat");
    write_chat(w, c);
    w.end_object();
  });
}

std::string chats_reply(std::string_view id_json, const std::vector<chat::chat_state>& chats) {
  return ok_reply(id_json, [&](json_writer& w) {
    w.begin_object().key("chats").begin_array();
    for (const auto& s : chats) write_chat_state(w, s);
    w.end_array().end_object();
  });
}

std::string send_reply(std::string_view id_json, const chat::send_result& r) {
  return ok_reply(id_json, [&](json_writer& w) {
    w.begin_object().key("chat").value(r.chat).key("seq").value(r.seq).key("ts").value(r.ts);
    w.key("dup").value(r.dup).end_object();
  });
}

std::string media_url_reply(std::string_view id_json, std::string_view url, chat::time_ms expires) {
  return ok_reply(id_json, [&](json_writer& w) {
    w.begin_object().key("url").value(url).key("expires").value(expires).end_object();
  });
}

std::string history_reply(std::string_view id_json, const chat::history_result& r) {
  std::size_t size = 64;
  for (const auto& m : r.messages) size += m.size() + 1;
  std::string out;
  out.reserve(size);
  json_writer w(out);
  w.begin_object().key("re").raw(id_or_null(id_json)).key("ok").begin_object().key("messages");
  w.begin_array();
  for (const auto& m : r.messages) w.raw(m);
  w.end_array().key("more").value(r.more).end_object().end_object();
  return out;
}

std::string wire_codec::encode_message(const chat::message& m) const {
  std::string out;
  out.reserve(128 + (m.text ? m.text->size() : 0));
  json_writer w(out);
  w.begin_object().key("chat").value(m.chat).key("seq").value(m.seq).key("ts").value(m.ts);
  w.key("from").value(m.from).key("cid").value(m.cid).key("kind").value(message_kind_name(m.kind));
  if (m.text) w.key("text").value(*m.text);
  if (m.media) {
    w.key("media").begin_object().key("media_id").value(m.media->media_id);
    w.key("mime").value(m.media->mime).key("size").value(m.media->size);
    if (m.media->name) w.key("name").value(*m.media->name);
    w.end_object();
  }
  if (m.reply_to) w.key("reply_to").value(*m.reply_to);
  if (m.system) {
    w.key("system").begin_object().key("event").value(m.system->event).key("by").value(m.system->by);
    if (m.system->users) {
      w.key("users").begin_array();
      for (const auto& u : *m.system->users) w.value(u);
      w.end_array();
    }
    if (m.system->title) w.key("title").value(*m.system->title);
    w.end_object();
  }
  w.end_object();
  return out;
}

chat::frame_ptr wire_codec::message_event(std::string_view encoded_message) const {
  // The stored MSG is `{"chat":...}`; the event is the same object with "ev" in front.
  static constexpr std::string_view prefix = R"({"ev":"msg",)";
  auto frame = std::make_shared<std::string>();
  frame->reserve(prefix.size() + encoded_message.size());
  frame->append(prefix).append(encoded_message.substr(1));
  return frame;
}

namespace {
chat::frame_ptr frame_of(std::string s) { return std::make_shared<const std::string>(std::move(s)); }
}  // namespace

std::string receipts_reply(std::string_view id_json, const chat::receipts_result& r) {
  return ok_reply(id_json, [&](json_writer& w) {
    w.begin_object().key("delivered").begin_array();
    for (const auto& u : r.delivered) w.value(u);
    w.end_array().key("read").begin_array();
    for (const auto& u : r.read) w.value(u);
    w.end_array().end_object();
  });
}

namespace {
void write_presence_fields(json_writer& w, const chat::presence_state& p) {
  w.key("user_id").value(p.user_id).key("online").value(p.online).key("last_seen");
  if (p.last_seen) {
    w.value(*p.last_seen);
  } else {
    w.null();
  }
}
}  // namespace

void write_presence(json_writer& w, const chat::presence_state& p) {
  w.begin_object();
  write_presence_fields(w, p);
  w.end_object();
}

std::string presence_reply(std::string_view id_json, const chat::presence_result& r) {
  return ok_reply(id_json, [&](json_writer& w) {
    w.begin_object().key("presence").begin_array();
    for (const auto& p : r.presence) write_presence(w, p);
    w.end_array().key("denied").begin_array();
    for (const auto& u : r.denied) w.value(u);
    w.end_array().end_object();
  });
}

chat::frame_ptr wire_codec::chat_event(const chat::chat_record& c) const {
  std::string out;
  json_writer w(out);
  w.begin_object().key("ev").value("chat");
  write_chat_fields(w, c);
  w.end_object();
  return frame_of(std::move(out));
}

chat::frame_ptr wire_codec::receipt_event(std::string_view chat, std::string_view user,
                                          std::string_view kind, chat::seq_t seq) const {
  std::string out;
  json_writer w(out);
  w.begin_object().key("ev").value("receipt").key("chat").value(chat).key("user").value(user);
  w.key("kind").value(kind).key("seq").value(seq).end_object();
  return frame_of(std::move(out));
}

chat::frame_ptr wire_codec::read_sync_event(std::string_view chat, chat::seq_t seq) const {
  std::string out;
  json_writer w(out);
  w.begin_object().key("ev").value("read_sync").key("chat").value(chat).key("seq").value(seq);
  w.end_object();
  return frame_of(std::move(out));
}

chat::frame_ptr wire_codec::typing_event(std::string_view chat, std::string_view user,
                                         bool on) const {
  std::string out;
  json_writer w(out);
  w.begin_object().key("ev").value("typing").key("chat").value(chat).key("user").value(user);
  w.key("on").value(on).end_object();
  return frame_of(std::move(out));
}

chat::frame_ptr wire_codec::presence_event(const chat::presence_state& p) const {
  std::string out;
  json_writer w(out);
  w.begin_object().key("ev").value("presence");
  write_presence_fields(w, p);
  w.end_object();
  return frame_of(std::move(out));
}

chat::frame_ptr wire_codec::synced_event() const {
  static const chat::frame_ptr synced = std::make_shared<const std::string>(R"({"ev":"synced"})");
  return synced;
}

}  // namespace parley::proto
