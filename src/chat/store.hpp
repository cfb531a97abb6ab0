// chat::store — the port through which the domain keeps everything durable. The embedded
// implementation is store/rocksdb; a PostgreSQL one implements the same interface.
//
// Thread safety: every method may be called from any thread concurrently.
// Errors: every method returns errc::unavailable when the backend cannot be reached or fails
// (nothing was changed), errc::conflict only where stated; a missing record is an empty
// optional, not an error.
// Durability: write() and the create_/delete_ methods return ok only once the change is durable
// under the configured durability mode (synced to disk, or handed to the OS).
#pragma once

#include <functional>
#include <string>
#include <optional>
#include <string_view>
#include <vector>

#include "chat/error.hpp"
#include "chat/types.hpp"

namespace parley::chat {

// Everything one group commit writes, applied atomically (all or nothing) by store::write.
// A record replaces any stored record with the same key.
struct write_batch {
  std::vector<chat_record> chats;
  std::vector<membership_record> memberships;
  std::vector<message_record> messages;
  std::vector<dedup_record> dedups;
  std::vector<cursor_record> cursors;
  std::vector<media_link_record> media_links;

  bool empty() const {
    return chats.empty() && memberships.empty() && messages.empty() && dedups.empty() &&
           cursors.empty() && media_links.empty();
  }
  void clear() {
    chats.clear();
    memberships.clear();
    messages.clear();
    dedups.clear();
    cursors.clear();
    media_links.clear();
  }
};

class store {
 public:
  virtual ~store() = default;

  // Users. create_user fails with errc::conflict when the username is taken (atomically: two
  // concurrent creations of one username never both succeed).
  virtual status create_user(const user_record& user) = 0;
  virtual result<std::optional<user_record>> find_user(std::string_view user_id) = 0;
  virtual result<std::optional<user_record>> find_user_by_name(std::string_view username) = 0;

  // Sessions (devices). create_session also writes the device's initial cursors, atomically.
  virtual status create_session(const session_record& session,
                                const std::vector<cursor_record>& initial_cursors) = 0;
  virtual result<std::optional<session_record>> find_session(std::string_view token_hash) = 0;
  // Deletes the session and its device's cursors, atomically (logout).
  virtual status delete_session(std::string_view token_hash) = 0;

  // Chats and cursors. find_chat's last_seq is the seq of the chat's newest stored message (or
  // the record's own last_seq, if higher): writers rewrite a chat's record when its members or
  // title change, not for every message appended to it.
  virtual result<std::optional<chat_record>> find_chat(std::string_view chat_id) = 0;
  // Every membership of the user, departed ones included, in chat id order.
  virtual result<std::vector<membership_record>> memberships_of(std::string_view user_id) = 0;
  virtual result<std::optional<membership_record>> find_membership(std::string_view user_id,
                                                                   std::string_view chat_id) = 0;
  virtual result<std::optional<seq_t>> find_cursor(std::string_view device_id,
                                                   std::string_view chat_id) = 0;
  virtual result<std::optional<dedup_record>> find_dedup(std::string_view user_id,
                                                         std::string_view cid) = 0;

  // Messages. scan_messages visits the messages of `chat_id` whose seq lies in [from, to], in
  // increasing seq order (or decreasing when `descending`), until `visit` returns false.
  virtual result<std::optional<message_record>> find_message(std::string_view chat_id,
                                                             seq_t seq) = 0;
  virtual status scan_messages(std::string_view chat_id, seq_t from, seq_t to, bool descending,
                               const std::function<bool(const message_view&)>& visit) = 0;

  // Presence: when the user last went offline (written only when that changes).
  virtual status set_last_seen(std::string_view user_id, time_ms when) = 0;
  virtual result<std::optional<time_ms>> find_last_seen(std::string_view user_id) = 0;

  // Media. create_media fails with errc::conflict when the id exists. media_chats lists the
  // chats linked to the media (write_batch::media_links), in chat id order, at most `limit`.
  virtual status create_media(const media_record& media) = 0;
  virtual result<std::optional<media_record>> find_media(std::string_view media_id) = 0;
  virtual result<std::vector<std::string>> media_chats(std::string_view media_id,
                                                       std::size_t limit) = 0;
  virtual result<bool> has_media_link(std::string_view media_id, std::string_view chat_id) = 0;

  // Applies the batch atomically and durably.
  virtual status write(const write_batch& batch) = 0;

  // ok when the store can serve: it reads, and its last write did not fail (used by /healthz).
  virtual status health() = 0;
  // Makes everything written so far durable on disk (used at shutdown in `os` durability mode).
  virtual status flush() = 0;
};

// ok when every user of `user_ids` exists; not_found naming the first that does not (or the
// store's error).
inline status require_users(store& db, const std::vector<std::string>& user_ids) {
  for (const auto& id : user_ids) {
    auto found = db.find_user(id);
    if (!found) return found.err();
    if (!*found) return make_error(errc::not_found, "no such user: " + id);
  }
  return ok_status();
}

}  // namespace parley::chat
