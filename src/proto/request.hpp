// proto — the wire protocol (PROTOCOL.md): JSON frames to typed requests, typed results and
// events to JSON frames, with every validation and error code of §6. It depends on chat (for
// the typed requests) and Boost.JSON; it knows nothing of sockets.
//
// decode_request parses one client frame. Arguments are validated before anything is looked
// up; a failure names the request's id (when it could be read) so the reply can carry it.
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "chat/error.hpp"
#include "chat/requests.hpp"
#include "proto/limits.hpp"

namespace parley::proto {

struct auth_args {
  std::string token;
};
struct ping_args {};
struct users_get_args {
  std::vector<std::string> values;
  bool by_id = false;
};
struct chat_open_args {
  std::string peer;
};
struct chats_args {};
struct cursor_args {  // ack and read
  std::string chat;
  chat::seq_t seq = 0;
};
struct ack_args : cursor_args {};
struct read_args : cursor_args {};
struct receipts_args : cursor_args {};
struct typing_args {
  std::string chat;
  bool on = false;
};
struct members_args {  // group.add and group.remove
  std::string chat;
  std::vector<std::string> users;
};
struct group_add_args : members_args {};
struct group_remove_args : members_args {};
struct group_leave_args {
  std::string chat;
};
struct presence_sub_args {
  std::vector<std::string> users;
};
struct media_url_args {
  std::string media_id;
};

using request_args =
    std::variant<auth_args, ping_args, users_get_args, chat_open_args, chats_args,
                 chat::send_request, chat::history_request, ack_args, read_args, receipts_args,
                 typing_args, chat::group_create_request, group_add_args, group_remove_args,
                 group_leave_args, chat::group_update_request, presence_sub_args,
                 media_url_args>;

struct request {
  // The request's `id`, re-encoded as JSON (any JSON value); empty when absent or null: then
  // no success reply is sent.
  std::string id_json;
  request_args args;
};

struct decode_error {
  std::string id_json;  // empty when the id could not be read: the reply carries `re: null`
  chat::error err;
};

using decode_result = std::variant<request, decode_error>;

decode_result decode_request(std::string_view frame, const limits& lim);

}  // namespace parley::proto
