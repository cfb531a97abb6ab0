// presence_hub — who is online (PROTOCOL §4.7), and who watches whom.
//
// A user's presence lives on one owner shard (a hash of the user id): there, a count of the
// user's live connections, the last_seen time and the connections watching the user. A user
// is online while the count is above zero, so a second device coming and going causes no flap.
// last_seen is written to the store only when the user goes offline, never per heartbeat.
// Entries exist only for users that are online or watched.
//
// Thread safety: every method may be called from any thread; the work runs on owner shards,
// and events are pushed on each watcher's own shard.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/codec.hpp"
#include "chat/endpoint.hpp"
#include "chat/requests.hpp"
#include "chat/scheduler.hpp"
#include "chat/store.hpp"

namespace parley::chat {

class presence_hub {
 public:
  presence_hub(store& db, scheduler& sched, const codec& enc);
  ~presence_hub();

  void connected(const std::string& user_id);
  void disconnected(const std::string& user_id);

  // Makes `ep` watch `users` (and stop watching `previous`); `done` gets their current
  // presence, in the order of `users`, from whichever shard answers last.
  void watch(const std::shared_ptr<endpoint>& ep, const std::vector<std::string>& previous,
             const std::vector<std::string>& users,
             std::function<void(std::vector<presence_state>)> done);
  // Stops `ep` watching `users` (when its connection ends).
  void unwatch(const std::weak_ptr<endpoint>& ep, const std::vector<std::string>& users);

 private:
  struct user_presence;
  struct shard_state;
  std::size_t owner_of(const std::string& user_id) const;
  user_presence& entry(shard_state& shard, const std::string& user_id);
  void forget_if_idle(shard_state& shard, const std::string& user_id);
  void notify(const user_presence& p, const std::string& user_id);

  store& db_;
  scheduler& sched_;
  const codec& codec_;
  std::vector<std::unique_ptr<shard_state>> shards_;
};

}  // namespace parley::chat
