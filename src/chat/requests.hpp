// Typed requests and results of the domain: what proto decodes client frames into and encodes
// replies from. Arguments arrive here already validated for shape and size (proto's job); the
// domain checks meaning (membership, existence, duplicates).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chat/types.hpp"

namespace parley::chat {

// Who is asking: an authenticated device.
struct session_info {
  std::string user_id;
  std::string device_id;
};

struct media_ref {
  std::string media_id;
  std::string mime;
  std::uint64_t size = 0;
  std::optional<std::string> name;
};

struct send_request {
  std::string chat;
  std::string cid;
  std::optional<std::string> text;
  std::optional<media_ref> media;
  std::optional<seq_t> reply_to;
};

struct send_result {
  std::string chat;
  seq_t seq = 0;
  time_ms ts = 0;
  bool dup = false;
};

struct history_request {
  std::string chat;
  std::optional<seq_t> before;
  std::optional<seq_t> after;
  unsigned limit = 50;
};

struct history_result {
  std::vector<std::string> messages;  // encoded MSG objects, in the order they are answered
  bool more = false;
};

struct user_public {
  std::string user_id;
  std::string username;
  std::string display_name;
};

struct chat_state {
  chat_record chat;
  seq_t read_seq = 0;
  seq_t delivered_seq = 0;
  std::uint64_t unread = 0;
  std::optional<std::string> last_msg;  // encoded MSG
};

struct login_result {
  std::string token;
  std::string user_id;
  std::string device_id;
};

struct auth_result {
  session_info who;
};

// What a system message records (PROTOCOL §3, `system`).
struct system_event {
  std::string event;  // created, added, removed, left, title, admins
  std::string by;
  std::optional<std::vector<std::string>> users;
  std::optional<std::string> title;
};

struct group_create_request {
  std::string title;
  std::vector<std::string> members;
};

struct group_update_request {
  std::string chat;
  std::optional<std::string> title;
  std::vector<std::string> admins_add;
  std::vector<std::string> admins_remove;
};

struct receipts_result {
  std::vector<std::string> delivered;
  std::vector<std::string> read;
};

struct presence_state {
  std::string user_id;
  bool online = false;
  std::optional<time_ms> last_seen;
};

struct presence_result {
  std::vector<presence_state> presence;
  std::vector<std::string> denied;
};

// A message as the domain builds it, before it is encoded once and stored.
struct message {
  std::string chat;
  seq_t seq = 0;
  time_ms ts = 0;
  std::string from;
  std::string cid;
  message_kind kind = message_kind::text;
  std::optional<std::string> text;
  std::optional<media_ref> media;
  std::optional<seq_t> reply_to;
  std::optional<system_event> system;
};

}  // namespace parley::chat
