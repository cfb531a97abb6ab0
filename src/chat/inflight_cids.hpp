// inflight_cids — the (sender, cid) pairs whose send is accepted but not yet committed.
//
// Why: the owner shard of a chat detects a repeated cid within its own batch and in the store,
// but two sends with one cid to two different chats run on two different owner shards at once.
// Claiming the cid here first makes the second of them a `conflict`, as PROTOCOL §4.3 requires.
// Memory is bounded by the sends in flight, never by the sends ever made.
//
// Thread safety: all methods may be called from any thread (striped locks; no global lock).
#pragma once

#include <array>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "chat/keys.hpp"
#include "chat/types.hpp"

namespace parley::chat {

class inflight_cids {
 public:
  enum class claim { claimed, same_chat_in_flight, other_chat_in_flight };

  // Claims (user, cid) for `chat`. `same_chat_in_flight` means the pair is already claimed for
  // this chat (the owner shard finds it in its own batch).
  claim try_claim(std::string_view user, std::string_view cid, std::string_view chat) {
    auto key = pair_key(user, cid);
    auto& stripe = stripes_[std::hash<std::string>{}(key) % stripes_.size()];
    std::lock_guard lock(stripe.mutex);
    auto [it, inserted] = stripe.chats.try_emplace(std::move(key), chat);
    if (inserted) return claim::claimed;
    return it->second == chat ? claim::same_chat_in_flight : claim::other_chat_in_flight;
  }

  void release(std::string_view user, std::string_view cid) {
    auto key = pair_key(user, cid);
    auto& stripe = stripes_[std::hash<std::string>{}(key) % stripes_.size()];
    std::lock_guard lock(stripe.mutex);
    stripe.chats.erase(key);
  }

 private:
  struct stripe {
    std::mutex mutex;
    std::unordered_map<std::string, std::string> chats;
  };
  std::array<stripe, 64> stripes_;
};

}  // namespace parley::chat
