// A chat::scheduler for tests: one task queue per shard, run by the test's own thread, so the
// domain's multi-shard behaviour is deterministic and needs no threads.
#pragma once

#include <deque>
#include <functional>
#include <vector>

#include "chat/scheduler.hpp"

namespace parley::chat::testing {

class manual_scheduler final : public scheduler {
 public:
  explicit manual_scheduler(std::size_t shards) : queues_(shards) {}

  std::size_t shard_count() const override { return queues_.size(); }
  std::size_t current_shard() const override { return current_; }
  void post(std::size_t shard, std::function<void()> task) override {
    queues_.at(shard).push_back(std::move(task));
  }

  // Runs `fn` as if on `shard`.
  void run_on(std::size_t shard, const std::function<void()>& fn) {
    auto saved = current_;
    current_ = shard;
    fn();
    current_ = saved;
  }

  // Runs queued tasks, shard after shard, until every queue is empty. Returns tasks run.
  std::size_t run_all() {
    std::size_t ran = 0;
    for (bool any = true; any;) {
      any = false;
      for (std::size_t s = 0; s < queues_.size(); ++s) {
        while (!queues_[s].empty()) {
          auto task = std::move(queues_[s].front());
          queues_[s].pop_front();
          run_on(s, task);
          ++ran;
          any = true;
        }
      }
    }
    return ran;
  }

 private:
  std::vector<std::deque<std::function<void()>>> queues_;
  std::size_t current_ = static_cast<std::size_t>(-1);
};

}  // namespace parley::chat::testing
