// batch_writer — writes a chat owner's group commits, so that the owner's event loop does not
// wait for the store.
//
// Why: with `--durability sync` every group commit ends in a WAL fsync. Done on the owner
// shard's loop thread, the fsync stalls every connection of that shard (and the other shard's
// write queues behind it in RocksDB), which measured as most of the send->deliver latency at
// moderate load. With the write on a thread of its own, the loop keeps reading, answering and
// gathering the next batch while the previous one syncs: group commit that grows with load.
//
// Contract: one batch at a time per writer (the owner submits the next only after `done` of
// the previous one ran). The batch must stay alive and unchanged until `done` runs; `done` runs
// on the owner's shard, posted through the scheduler, never inside submit().
//
// Thread safety: submit() from the owner's shard only; the writer's own thread (if any) only
// touches the store and the scheduler, both safe from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "chat/scheduler.hpp"
#include "chat/store.hpp"

namespace parley::chat {

class batch_writer {
 public:
  virtual ~batch_writer() = default;
  virtual void submit(const write_batch& batch, std::function<void(status)> done) = 0;
};

// Writes on the calling (owner's) thread, then posts `done`: deterministic, for tests under a
// manual scheduler and for embedders that want no extra threads. The owner still sees the
// batch "in flight" until `done` runs, so its pipelining is exercised the same way.
class inline_batch_writer final : public batch_writer {
 public:
  inline_batch_writer(store& db, scheduler& sched, std::size_t shard)
      : db_(db), sched_(sched), shard_(shard) {}
  void submit(const write_batch& batch, std::function<void(status)> done) override;

 private:
  store& db_;
  scheduler& sched_;
  std::size_t shard_;
};

// Writes on a thread of its own (one per owner shard). Concurrent writers of the shards meet in
// the store's own group commit (RocksDB joins concurrent writes into one WAL write and sync).
// The destructor finishes the batch being written (it is durable) and joins; a `done` posted
// to a scheduler that no longer runs is simply dropped.
class threaded_batch_writer final : public batch_writer {
 public:
  threaded_batch_writer(store& db, scheduler& sched, std::size_t shard);
  ~threaded_batch_writer() override;
  threaded_batch_writer(const threaded_batch_writer&) = delete;
  threaded_batch_writer& operator=(const threaded_batch_writer&) = delete;

  void submit(const write_batch& batch, std::function<void(status)> done) override;

 private:
  void run();

  store& db_;
  scheduler& sched_;
  std::size_t shard_;
  std::mutex mutex_;
  std::condition_variable wake_;
  const write_batch* job_ = nullptr;  // guarded by mutex_
  std::function<void(status)> done_;  // guarded by mutex_
  bool stopping_ = false;             // guarded by mutex_
  std::thread thread_;                // last: starts once the members above exist
};

}  // namespace parley::chat
