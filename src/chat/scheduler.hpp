// chat::scheduler — the port through which the domain runs work on its shards (one event loop
// per core). The server implements it over Asio io_contexts; tests implement it with plain
// queues.
//
// Thread safety: every method may be called from any thread. Tasks posted to one shard run one
// at a time, in the order they were posted.
#pragma once

#include <cstddef>
#include <functional>

namespace parley::chat {

class scheduler {
 public:
  virtual ~scheduler() = default;
  virtual std::size_t shard_count() const = 0;
  // The shard whose thread is calling, or shard_count() when called from elsewhere.
  virtual std::size_t current_shard() const = 0;
  virtual void post(std::size_t shard, std::function<void()> task) = 0;
};

}  // namespace parley::chat
