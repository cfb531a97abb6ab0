// delivery_hub — the live connections of every shard and the path of a message to them:
// live fan-out after a commit, and the replay that brings a device up to date after `auth`.
//
// Each shard keeps its own registry of the endpoints that live on it; a commit publishes one
// task per shard per batch (never one per recipient), and the frame of a message is shared by
// every endpoint it is pushed to.
//
// Replay (PROTOCOL §4.4): after attach, the endpoint is "replaying". The hub reads, chat by
// chat, every message above the device's cursor from the store and pushes it, pausing whenever
// the endpoint's queue is above its high-water mark (so a device with a huge backlog is paced,
// not closed as a slow consumer). Live messages that reach a replaying endpoint are not pushed;
// their chat is queued to be read again from the store before the replay ends (other events
// are pushed at once). Since all of this runs on the endpoint's shard, the switch to live
// delivery leaves no gap: `synced` is pushed once, and every later message arrives live.
//
// Thread safety: attach/detach run on the endpoint's shard; publish and close_device may be
// called from any thread.
#pragma once

#include <cstddef>
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

// One committed message on its way to the members' devices.
struct delivery {
  std::string chat;
  seq_t seq = 0;
  frame_ptr frame;
  // The users to push it to (the chat's members at that seq), shared by consecutive messages.
  std::shared_ptr<const std::vector<std::string>> recipients;
  std::string exclude_device;  // the sending device: never pushed its own message
  // A message of the chat's log (replayed from the store when missed), as opposed to an event
  // without a seq of its own (receipt, chat, read_sync, typing).
  bool message = false;
};

class delivery_hub {
 public:
  struct options {
    std::size_t replay_high_water = 256 * 1024;  // pause replay above this many queued bytes
  };

  delivery_hub(store& db, scheduler& sched, const codec& enc, options opts);
  ~delivery_hub();

  // Registers an authenticated endpoint on the calling shard (which must be ep->shard()) and
  // starts its replay; `synced` is pushed when the replay ends.
  void attach(std::shared_ptr<endpoint> ep);
  // Forgets the endpoint (on its shard). Safe to call for an endpoint never attached.
  void detach(const endpoint* ep);
  // Pushes the messages of one commit to every member device on every shard.
  void publish(std::shared_ptr<const std::vector<delivery>> batch);
  // Closes every live connection of one device, on every shard (logout).
  void close_device(const std::string& user_id, const std::string& device_id, int code);

  // Connections attached on all shards; approximate while they change (for metrics and tests).
  std::size_t attached_count() const;

 private:
  struct entry;
  struct shard_registry;
  void deliver_on_shard(std::size_t shard, const std::vector<delivery>& batch);
  void continue_replay(entry& e);
  // The entry of `ep` on its shard, or null once detached.
  entry* find(const endpoint& ep);
  void queue_chat(entry& e, const std::string& chat_id);
  bool replay_chunk(entry& e, const std::string& chat_id, bool& failed);
  void finish_replay(entry& e);

  store& db_;
  scheduler& sched_;
  const codec& codec_;
  options opts_;
  std::vector<std::unique_ptr<shard_registry>> shards_;
};

}  // namespace parley::chat
