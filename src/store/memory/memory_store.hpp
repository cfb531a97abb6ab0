// parley::store::memory_store — chat::store kept in std::maps, for tests of the domain
// (chat::service) that need a fast, deterministic store and no disk. Depends on chat/ only.
//
// Thread safety: every method may be called from any thread; one mutex serialises them, which
// also makes write() trivially atomic. scan_messages copies the requested range under the mutex
// and visits it after releasing it, so a visitor may call back into the store.
// Errors: nothing here fails on its own, except
//   - create_user: errc::conflict when the username (or the user id) is taken;
//   - every mutating method (create_*, delete_session, write) returns errc::unavailable, changing
//     nothing, while fail_writes_for_test(true) is in effect.
// Durability: none; flush() and health() always succeed.
#pragma once

#include <atomic>
#include <map>
#include <set>
#include <mutex>
#include <string>

#include "chat/store.hpp"

namespace parley::store {

class memory_store : public chat::store {
 public:
  memory_store() = default;
  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  chat::status create_user(const chat::user_record& user) override;
  chat::result<std::optional<chat::user_record>> find_user(std::string_view user_id) override;
  chat::result<std::optional<chat::user_record>> find_user_by_name(
      std::string_view username) override;

  chat::status create_session(const chat::session_record& session,
                              const std::vector<chat::cursor_record>& initial_cursors) override;
  chat::result<std::optional<chat::session_record>> find_session(
      std::string_view token_hash) override;
  chat::status delete_session(std::string_view token_hash) override;

  chat::result<std::optional<chat::chat_record>> find_chat(std::string_view chat_id) override;
  chat::result<std::vector<chat::membership_record>> memberships_of(
      std::string_view user_id) override;
  chat::result<std::optional<chat::membership_record>> find_membership(
      std::string_view user_id, std::string_view chat_id) override;
  chat::result<std::optional<chat::seq_t>> find_cursor(std::string_view device_id,
                                                       std::string_view chat_id) override;
  chat::result<std::optional<chat::dedup_record>> find_dedup(std::string_view user_id,
                                                             std::string_view cid) override;

  chat::result<std::optional<chat::message_record>> find_message(std::string_view chat_id,
                                                                 chat::seq_t seq) override;
  chat::status scan_messages(std::string_view chat_id, chat::seq_t from, chat::seq_t to,
                             bool descending,
                             const std::function<bool(const chat::message_view&)>& visit) override;

  chat::status set_last_seen(std::string_view user_id, chat::time_ms when) override;
  chat::result<std::optional<chat::time_ms>> find_last_seen(std::string_view user_id) override;

  chat::status create_media(const chat::media_record& media) override;
  chat::result<std::optional<chat::media_record>> find_media(std::string_view media_id) override;
  chat::result<std::vector<std::string>> media_chats(std::string_view media_id,
                                                     std::size_t limit) override;
  chat::result<bool> has_media_link(std::string_view media_id, std::string_view chat_id) override;

  chat::status write(const chat::write_batch& batch) override;

  chat::status health() override;
  chat::status flush() override;

  // While `fail` is true, every mutating method returns errc::unavailable and changes nothing,
  // as a real backend does when its disk or server is gone. Reads keep working.
  void fail_writes_for_test(bool fail) { fail_writes_.store(fail); }

 private:
  // Two-part keys are nested maps, so that "everything of one user" is one inner map and the
  // inner order is the second part's order (memberships_of promises chat id order).
  template <class V>
  using by_id = std::map<std::string, V, std::less<>>;

  bool failing() const { return fail_writes_.load(); }

  std::atomic<bool> fail_writes_{false};
  std::mutex mutex_;
  by_id<chat::user_record> users_;
  by_id<std::string> usernames_;  // username -> user id
  by_id<chat::session_record> sessions_;
  by_id<chat::time_ms> last_seen_;
  by_id<chat::chat_record> chats_;
  by_id<by_id<chat::membership_record>> memberships_;            // user id -> chat id -> membership
  by_id<std::map<chat::seq_t, chat::message_record>> messages_;  // chat id -> seq -> message
  by_id<by_id<chat::seq_t>> cursors_;        // device id -> chat id -> delivered seq
  by_id<by_id<chat::dedup_record>> dedups_;  // user id -> cid -> dedup
  by_id<chat::media_record> media_;
  by_id<std::set<std::string, std::less<>>> media_chats_;  // media id -> chat ids
};

}  // namespace parley::store
