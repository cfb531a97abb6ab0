#include "store/memory/memory_store.hpp"

#include <algorithm>
#include <utility>

namespace parley::store {

using chat::errc;
using chat::make_error;
using chat::ok_status;

namespace {

chat::error unavailable_for_test() {
  return make_error(errc::unavailable, "memory_store: writes failed by fail_writes_for_test");
}

// The record stored under (outer, inner), or nullptr.
template <class Outer>
auto find_nested(Outer& outer, std::string_view first, std::string_view second)
    -> decltype(&outer.begin()->second.begin()->second) {
  auto o = outer.find(first);
  if (o == outer.end()) return nullptr;
  auto i = o->second.find(second);
  if (i == o->second.end()) return nullptr;
  return &i->second;
}

}  // namespace

chat::status memory_store::create_user(const chat::user_record& user) {
  if (failing()) return unavailable_for_test();
  std::lock_guard lock(mutex_);
  if (usernames_.contains(user.username)) {
    return make_error(errc::conflict, "username taken");
  }
  // An id collision would silently orphan the old username's index entry; refuse it the same
  // way the RocksDB store does.
  if (users_.contains(user.id)) return make_error(errc::conflict, "user id taken");
  usernames_.emplace(user.username, user.id);
  users_.emplace(user.id, user);
  return ok_status();
}

chat::result<std::optional<chat::user_record>> memory_store::find_user(std::string_view user_id) {
  std::lock_guard lock(mutex_);
  auto it = users_.find(user_id);
  if (it == users_.end()) return std::optional<chat::user_record>();
  return std::optional(it->second);
}

chat::result<std::optional<chat::user_record>> memory_store::find_user_by_name(
    std::string_view username) {
  std::lock_guard lock(mutex_);
  auto name = usernames_.find(username);
  if (name == usernames_.end()) return std::optional<chat::user_record>();
  auto user = users_.find(name->second);
  if (user == users_.end()) return make_error(errc::internal, "username index points nowhere");
  return std::optional(user->second);
}

chat::status memory_store::create_session(const chat::session_record& session,
                                          const std::vector<chat::cursor_record>& initial_cursors) {
  if (failing()) return unavailable_for_test();
  std::lock_guard lock(mutex_);
  sessions_.insert_or_assign(session.token_hash, session);
  for (const auto& c : initial_cursors) {
    cursors_[c.device_id].insert_or_assign(c.chat_id, c.delivered_seq);
  }
  return ok_status();
}

chat::result<std::optional<chat::session_record>> memory_store::find_session(
    std::string_view token_hash) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(token_hash);
  if (it == sessions_.end()) return std::optional<chat::session_record>();
  return std::optional(it->second);
}

chat::status memory_store::set_last_seen(std::string_view user_id, chat::time_ms when) {
  if (failing()) return unavailable_for_test();
  std::lock_guard lock(mutex_);
  last_seen_.insert_or_assign(std::string(user_id), when);
  return chat::ok_status();
}

chat::result<std::optional<chat::time_ms>> memory_store::find_last_seen(std::string_view user_id) {
  std::lock_guard lock(mutex_);
  auto it = last_seen_.find(user_id);
  if (it == last_seen_.end()) return std::optional<chat::time_ms>();
  return std::optional<chat::time_ms>(it->second);
}

chat::status memory_store::delete_session(std::string_view token_hash) {
  if (failing()) return unavailable_for_test();
  std::lock_guard lock(mutex_);
  if (auto it = sessions_.find(token_hash); it != sessions_.end()) {
    if (auto cursors = cursors_.find(it->second.device_id); cursors != cursors_.end())
      cursors_.erase(cursors);  // the device is gone: so are its cursors
    sessions_.erase(it);
  }
  return ok_status();
}

chat::result<std::optional<chat::chat_record>> memory_store::find_chat(std::string_view chat_id) {
  std::lock_guard lock(mutex_);
  auto it = chats_.find(chat_id);
  if (it == chats_.end()) return std::optional<chat::chat_record>();
  auto chat = it->second;
  // The messages appended since the record was written: the newest one's seq is the last.
  if (auto m = messages_.find(chat_id); m != messages_.end() && !m->second.empty())
    chat.last_seq = std::max(chat.last_seq, m->second.rbegin()->first);
  return std::optional(std::move(chat));
}

chat::result<std::vector<chat::membership_record>> memory_store::memberships_of(
    std::string_view user_id) {
  std::lock_guard lock(mutex_);
  std::vector<chat::membership_record> out;
  if (auto it = memberships_.find(user_id); it != memberships_.end()) {
    out.reserve(it->second.size());
    for (const auto& [chat_id, m] : it->second) out.push_back(m);
  }
  return out;
}

chat::result<std::optional<chat::membership_record>> memory_store::find_membership(
    std::string_view user_id, std::string_view chat_id) {
  std::lock_guard lock(mutex_);
  if (auto* m = find_nested(memberships_, user_id, chat_id)) return std::optional(*m);
  return std::optional<chat::membership_record>();
}

chat::result<std::optional<chat::seq_t>> memory_store::find_cursor(std::string_view device_id,
                                                                   std::string_view chat_id) {
  std::lock_guard lock(mutex_);
  if (auto* seq = find_nested(cursors_, device_id, chat_id)) return std::optional(*seq);
  return std::optional<chat::seq_t>();
}

chat::result<std::optional<chat::dedup_record>> memory_store::find_dedup(std::string_view user_id,
                                                                         std::string_view cid) {
  std::lock_guard lock(mutex_);
  if (auto* d = find_nested(dedups_, user_id, cid)) return std::optional(*d);
  return std::optional<chat::dedup_record>();
}

chat::result<std::optional<chat::message_record>> memory_store::find_message(
    std::string_view chat_id, chat::seq_t seq) {
  std::lock_guard lock(mutex_);
  auto chat = messages_.find(chat_id);
  if (chat == messages_.end()) return std::optional<chat::message_record>();
  auto it = chat->second.find(seq);
  if (it == chat->second.end()) return std::optional<chat::message_record>();
  return std::optional(it->second);
}

chat::status memory_store::scan_messages(
    std::string_view chat_id, chat::seq_t from, chat::seq_t to, bool descending,
    const std::function<bool(const chat::message_view&)>& visit) {
  if (from > to) return ok_status();
  // Copy out, then visit without the lock: a visitor that calls the store must not deadlock,
  // and views must stay valid even if a concurrent write replaces the record.
  std::vector<chat::message_record> range;
  {
    std::lock_guard lock(mutex_);
    auto chat = messages_.find(chat_id);
    if (chat == messages_.end()) return ok_status();
    const auto& log = chat->second;
    for (auto it = log.lower_bound(from); it != log.end() && it->first <= to; ++it) {
      range.push_back(it->second);
    }
  }
  auto visit_one = [&](const chat::message_record& m) {
    return visit(chat::message_view{.seq = m.seq,
                                    .ts = m.ts,
                                    .kind = m.kind,
                                    .from_user = m.from_user,
                                    .from_device = m.from_device,
                                    .encoded = m.encoded});
  };
  if (descending) {
    for (auto it = range.rbegin(); it != range.rend(); ++it) {
      if (!visit_one(*it)) break;
    }
  } else {
    for (const auto& m : range) {
      if (!visit_one(m)) break;
    }
  }
  return ok_status();
}

chat::status memory_store::write(const chat::write_batch& batch) {
  if (failing()) return unavailable_for_test();
  std::lock_guard lock(mutex_);
  // Nothing below can fail, so applying in place under the lock is all-or-nothing.
  for (const auto& c : batch.chats) chats_.insert_or_assign(c.id, c);
  for (const auto& m : batch.memberships) memberships_[m.user_id].insert_or_assign(m.chat_id, m);
  for (const auto& m : batch.messages) messages_[m.chat_id].insert_or_assign(m.seq, m);
  for (const auto& d : batch.dedups) dedups_[d.user_id].insert_or_assign(d.cid, d);
  for (const auto& c : batch.cursors) {
    cursors_[c.device_id].insert_or_assign(c.chat_id, c.delivered_seq);
  }
  for (const auto& l : batch.media_links) media_chats_[l.media_id].insert(l.chat_id);
  return ok_status();
}

chat::status memory_store::create_media(const chat::media_record& media) {
  if (failing()) return unavailable_for_test();
  std::lock_guard lock(mutex_);
  if (!media_.emplace(media.id, media).second)
    return make_error(chat::errc::conflict, "media id exists");
  return ok_status();
}

chat::result<std::optional<chat::media_record>> memory_store::find_media(
    std::string_view media_id) {
  std::lock_guard lock(mutex_);
  auto it = media_.find(media_id);
  if (it == media_.end()) return std::optional<chat::media_record>();
  return std::optional(it->second);
}

chat::result<bool> memory_store::has_media_link(std::string_view media_id,
                                                std::string_view chat_id) {
  std::lock_guard lock(mutex_);
  auto it = media_chats_.find(media_id);
  return it != media_chats_.end() && it->second.find(chat_id) != it->second.end();
}

chat::result<std::vector<std::string>> memory_store::media_chats(std::string_view media_id,
                                                                 std::size_t limit) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  if (auto it = media_chats_.find(media_id); it != media_chats_.end()) {
    for (const auto& chat_id : it->second) {
      if (out.size() >= limit) break;
      out.push_back(chat_id);
    }
  }
  return out;
}

chat::status memory_store::health() { return ok_status(); }

chat::status memory_store::flush() { return ok_status(); }

}  // namespace parley::store
