// Encoders for the server's frames: replies to requests and events (PROTOCOL §3), and the
// wire_codec through which the domain encodes messages once.
// Thread safety: pure functions; wire_codec is stateless.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "chat/codec.hpp"
#include "chat/error.hpp"
#include "chat/requests.hpp"
#include "proto/json_writer.hpp"

namespace parley::proto {

// `{"re":ID,"ok":` + result + `}`; `write_result` writes the result object.
template <class Fn>
std::string ok_reply(std::string_view id_json, Fn&& write_result) {
  std::string out;
  out.reserve(128);
  json_writer w(out);
  w.begin_object().key("re").raw(id_json.empty() ? std::string_view("null") : id_json).key("ok");
  write_result(w);
  w.end_object();
  return out;
}
std::string empty_ok_reply(std::string_view id_json);
// `{"re":ID|null,"err":{"code","message","retry_ms"?}}`
std::string error_reply(std::string_view id_json, const chat::error& err);

void write_chat(json_writer& w, const chat::chat_record& c);
void write_chat_state(json_writer& w, const chat::chat_state& s);
void write_user(json_writer& w, const chat::user_public& u);

std::string auth_reply(std::string_view id_json, const chat::session_info& who, int heartbeat_ms,
                       chat::time_ms server_time);
std::string ping_reply(std::string_view id_json, chat::time_ms server_time);
std::string users_reply(std::string_view id_json, const std::vector<chat::user_public>& users);
std::string chat_reply(std::string_view id_json, const chat::chat_record& c);
std::string chats_reply(std::string_view id_json, const std::vector<chat::chat_state>& chats);
std::string send_reply(std::string_view id_json, const chat::send_result& r);
std::string history_reply(std::string_view id_json, const chat::history_result& r);
std::string receipts_reply(std::string_view id_json, const chat::receipts_result& r);
// media.url: `expires` in milliseconds since the epoch.
std::string media_url_reply(std::string_view id_json, std::string_view url, chat::time_ms expires);
std::string presence_reply(std::string_view id_json, const chat::presence_result& r);
void write_presence(json_writer& w, const chat::presence_state& p);

class wire_codec final : public chat::codec {
 public:
  std::string encode_message(const chat::message& m) const override;
  chat::frame_ptr message_event(std::string_view encoded_message) const override;
  chat::frame_ptr synced_event() const override;
  chat::frame_ptr chat_event(const chat::chat_record& c) const override;
  chat::frame_ptr receipt_event(std::string_view chat, std::string_view user,
                                std::string_view kind, chat::seq_t seq) const override;
  chat::frame_ptr read_sync_event(std::string_view chat, chat::seq_t seq) const override;
  chat::frame_ptr typing_event(std::string_view chat, std::string_view user,
                               bool on) const override;
  chat::frame_ptr presence_event(const chat::presence_state& p) const override;
};

}  // namespace parley::proto
