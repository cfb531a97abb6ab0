// The records of the domain, as the store keeps them. Plain data: no behaviour, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::chat {

using seq_t = std::uint64_t;
using time_ms = std::int64_t;
// A frame ready for the wire, shared by every connection it is queued on (encoded once).
using frame_ptr = std::shared_ptr<const std::string>;

struct user_record {
  std::string id;
  std::string username;
  std::string display_name;
  std::string password_hash;  // argon2id, encoded with its salt and parameters
  time_ms created = 0;
};

// A device: created by one login, identified by the SHA-256 of its bearer token.
struct session_record {
  std::string token_hash;  // 32 raw bytes: SHA-256 of the token; the token itself is never stored
  std::string user_id;
  std::string device_id;
  std::string device_name;
  time_ms created = 0;
};

enum class chat_kind : std::uint8_t { direct = 0, group = 1 };
enum class member_role : std::uint8_t { member = 0, admin = 1 };

struct chat_member {
  std::string user_id;
  member_role role = member_role::member;
};

struct chat_record {
  std::string id;
  chat_kind kind = chat_kind::direct;
  std::string title;                 // groups only
  std::vector<chat_member> members;  // current members, in the order they joined
  seq_t last_seq = 0;
  time_ms created = 0;
};

// One user's standing in one chat; kept after the user leaves (left_seq != 0), because the
// cut-off and the capped acks of a departed member depend on it.
struct membership_record {
  std::string user_id;
  std::string chat_id;
  member_role role = member_role::member;
  seq_t joined_seq = 1;     // the first seq this user may see
  seq_t left_seq = 0;       // the system message that ended the membership; 0 while a member
  seq_t read_seq = 0;       // the user's read cursor
  seq_t delivered_seq = 0;  // the highest seq any device of the user acked
};

// One device's delivered cursor in one chat.
struct cursor_record {
  std::string device_id;
  std::string chat_id;
  seq_t delivered_seq = 0;
};

enum class message_kind : std::uint8_t { text = 0, media = 1, system = 2 };

struct message_record {
  std::string chat_id;
  seq_t seq = 0;
  time_ms ts = 0;
  std::string from_user;
  std::string from_device;  // empty for system messages
  message_kind kind = message_kind::text;
  std::string encoded;  // the MSG object as JSON, served as it is by history and replay
};

// A stored message as seen while scanning: views into the store's buffers, valid only during
// the visit.
struct message_view {
  seq_t seq = 0;
  time_ms ts = 0;
  message_kind kind = message_kind::text;
  std::string_view from_user;
  std::string_view from_device;
  std::string_view encoded;
};

// An uploaded object (PROTOCOL §2 POST /v1/media): its bytes are in the blob store under
// blob_key; this is what the server knows about them.
struct media_record {
  std::string id;     // 128 random bits, never derived from user input
  std::string owner;  // the uploader's user id
  std::string mime;   // as declared by the uploader and checked against the bytes
  std::uint64_t size = 0;
  std::string sha256;  // lowercase hex of the bytes
  std::string blob_key;
  time_ms created = 0;
};

// A chat that carries a media in one of its messages: its members may fetch the media.
struct media_link_record {
  std::string media_id;
  std::string chat_id;
};

using content_fingerprint = std::array<std::uint8_t, 16>;

// Remembers the first send of (user_id, cid) so that a retry answers the same seq.
struct dedup_record {
  std::string user_id;
  std::string cid;
  std::string chat_id;
  seq_t seq = 0;
  time_ms ts = 0;
  content_fingerprint fingerprint{};  // of text, media and reply_to: a different content is a conflict
};

}  // namespace parley::chat
