// chat — the domain of Parley: accounts, devices, chats, sending, delivery, cursors.
// It knows nothing of sockets, JSON or SQL: it talks to the world through its ports
// (store, codec, scheduler, endpoint) and depends only on util.
//
// chat::service is the facade the server calls. Calls that change a chat are routed to the
// chat's owner shard (see chat_owner.hpp) and answered through a callback once durable; reads
// run on the calling thread; account calls hash passwords and must run off the I/O threads.
//
// Thread safety: every method may be called from any thread, except attach/detach (on the
// endpoint's shard). Callbacks run on the chat's owner shard: they must only hand the result
// over (e.g. queue a frame on a connection), never block.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chat/batch_writer.hpp"
#include "chat/chat_owner.hpp"
#include "chat/codec.hpp"
#include "chat/delivery_hub.hpp"
#include "chat/endpoint.hpp"
#include "chat/inflight_cids.hpp"
#include "chat/login_limiter.hpp"
#include "chat/presence_hub.hpp"
#include "chat/requests.hpp"
#include "chat/scheduler.hpp"
#include "chat/store.hpp"

namespace parley::chat {

class service {
 public:
  struct options {
    unsigned login_max_failures = 10;
    time_ms login_window_ms = 60'000;
    std::size_t max_group_members = 256;
    std::size_t chat_cache_members = std::size_t{1} << 20;  // per shard
    delivery_hub::options delivery;
    // Group commits are written on a thread per shard (batch_writer.hpp); false writes them on
    // the owner's loop, for tests that drive the domain under a manual scheduler.
    bool writer_threads = true;
  };

  service(store& db, scheduler& sched, const codec& enc, options opts);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  // Accounts. Blocking and CPU-heavy (argon2id): call from a worker thread.
  // register_user: conflict when the username is taken.
  result<user_public> register_user(const std::string& username, const std::string& password,
                                    const std::string& display_name);
  // login: creates a new device; unauthenticated on a wrong username or password,
  // rate_limited after too many failures for the username.
  result<login_result> login(const std::string& username, const std::string& password,
                             const std::string& device_name);
  // logout: forgets the device's token and closes its live connections with 4001.
  status logout(std::string_view token);
  // authenticate: one store read; unauthenticated for an unknown token.
  result<session_info> authenticate(std::string_view token);

  // Connections (on the endpoint's shard). attach starts the replay and makes the user
  // online; detach forgets the endpoint, its presence watches, and may make the user offline.
  void attach(std::shared_ptr<endpoint> ep);
  void detach(const std::shared_ptr<endpoint>& ep,
              const std::vector<std::string>& watched);

  // Reads, answered on the calling thread.
  result<std::vector<user_public>> users_by_name(const std::vector<std::string>& usernames);
  result<std::vector<user_public>> users_by_id(const std::vector<std::string>& ids);
  result<std::vector<chat_state>> chats(const session_info& who);
  result<history_result> history(const session_info& who, const history_request& req);

  // Changes, answered from the chat's owner shard once durable.
  void open_direct(const session_info& who, const std::string& peer, reply_fn<chat_record> done);
  void send(const session_info& who, send_request req, reply_fn<send_result> done);
  void ack(const session_info& who, std::string chat, seq_t seq, reply_fn<done> done);
  void read(const session_info& who, std::string chat, seq_t seq, reply_fn<done> done);
  void receipts(const session_info& who, std::string chat, seq_t seq,
                reply_fn<receipts_result> done);
  void typing(const session_info& who, std::string chat, bool on, reply_fn<done> done);

  // Groups. Every user named must exist (not_found otherwise).
  void create_group(const session_info& who, group_create_request req, reply_fn<chat_record> done);
  void add_members(const session_info& who, std::string chat, std::vector<std::string> users,
                   reply_fn<chat_record> done);
  void remove_members(const session_info& who, std::string chat, std::vector<std::string> users,
                      reply_fn<chat_record> done);
  void leave(const session_info& who, std::string chat, reply_fn<done> done);
  void update_group(const session_info& who, group_update_request req, reply_fn<chat_record> done);

  // Presence: replaces the watch list of `ep` (`previous`) with the users of `users` who share
  // a chat with the caller; the others are answered in `denied`. `watched` receives the new
  // list (to pass back on the next call and to detach).
  void presence_watch(const std::shared_ptr<endpoint>& ep, const session_info& who,
                      const std::vector<std::string>& previous, const std::vector<std::string>& users,
                      std::vector<std::string>& watched, reply_fn<presence_result> done);

  store& storage() { return db_; }
  delivery_hub& hub() { return hub_; }

  // The direct chat's id is derived from its two users, so get-or-create needs no index.
  static std::string direct_chat_id(std::string_view user_a, std::string_view user_b);

 private:
  std::size_t owner_of(std::string_view chat_id) const;
  // users.get: the users found by `lookup` for each key, each once, in the order asked.
  template <class Lookup>
  result<std::vector<user_public>> find_users(const std::vector<std::string>& keys, Lookup lookup);
  // Runs `task` on the owner shard of `chat_id` (right away when already there).
  void on_owner(std::string_view chat_id, std::function<void(chat_owner&)> task);

  store& db_;
  scheduler& sched_;
  const codec& codec_;
  options opts_;
  delivery_hub hub_;
  presence_hub presence_;
  inflight_cids inflight_;
  login_limiter login_limiter_;
  std::vector<std::unique_ptr<chat_owner>> owners_;
  // After owners_: destroyed (joined) first, so no write completes for a destroyed owner.
  std::vector<std::unique_ptr<batch_writer>> writers_;
  std::string dummy_password_hash_;  // verified against for unknown users: equal timing
};

}  // namespace parley::chat
