// The threaded batch writer: writes off the caller's thread, answers on the owner's shard
// through the scheduler, and finishes the batch in progress when destroyed.
#include "chat/batch_writer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "store/memory/memory_store.hpp"

namespace parley::chat {
namespace {

// A scheduler whose tasks the test thread runs; posts may come from any thread.
class queue_scheduler final : public scheduler {
 public:
  std::size_t shard_count() const override { return 2; }
  std::size_t current_shard() const override { return shard_count(); }
  void post(std::size_t shard, std::function<void()> task) override {
    std::lock_guard lock(mutex_);
    tasks_.push_back({shard, std::move(task), std::this_thread::get_id()});
    posted_.notify_all();
  }
  struct task {
    std::size_t shard;
    std::function<void()> fn;
    std::thread::id poster;
  };
  // The next task, waiting up to ten seconds for one.
  std::optional<task> next() {
    std::unique_lock lock(mutex_);
    if (!posted_.wait_for(lock, std::chrono::seconds(10), [&] { return !tasks_.empty(); }))
      return std::nullopt;
    auto t = std::move(tasks_.front());
    tasks_.pop_front();
    return t;
  }

 private:
  std::mutex mutex_;
  std::condition_variable posted_;
  std::deque<task> tasks_;
};

write_batch one_message(seq_t seq) {
  write_batch b;
  b.messages.push_back({"chat", seq, 1, "ualice", "valice", message_kind::text, "encoded"});
  return b;
}

TEST(ThreadedBatchWriter, WritesOffTheCallersThreadAndAnswersOnTheOwnersShard) {
  ::parley::store::memory_store db;
  queue_scheduler sched;
  threaded_batch_writer writer(db, sched, 1);
  for (seq_t seq = 1; seq <= 3; ++seq) {
    auto batch = one_message(seq);
    std::optional<status> outcome;
    writer.submit(batch, [&](status s) { outcome = std::move(s); });
    auto t = sched.next();
    ASSERT_TRUE(t.has_value()) << "no answer within ten seconds";
    EXPECT_EQ(t->shard, 1u);
    EXPECT_NE(t->poster, std::this_thread::get_id()) << "written on the writer's own thread";
    EXPECT_FALSE(outcome.has_value()) << "answered only when the owner's shard runs the task";
    t->fn();
    ASSERT_TRUE(outcome && outcome->ok());
    auto stored = db.find_message("chat", seq);
    ASSERT_TRUE(stored.ok());
    EXPECT_TRUE(stored->has_value());
  }
}

TEST(ThreadedBatchWriter, AFailedWriteIsReportedNotSwallowed) {
  ::parley::store::memory_store db;
  queue_scheduler sched;
  threaded_batch_writer writer(db, sched, 0);
  db.fail_writes_for_test(true);
  auto batch = one_message(1);
  std::optional<status> outcome;
  writer.submit(batch, [&](status s) { outcome = std::move(s); });
  auto t = sched.next();
  ASSERT_TRUE(t.has_value());
  t->fn();
  ASSERT_TRUE(outcome.has_value());
  EXPECT_FALSE(outcome->ok());
}

TEST(ThreadedBatchWriter, DestructionFinishesTheBatchInProgress) {
  ::parley::store::memory_store db;
  queue_scheduler sched;
  auto batch = one_message(7);
  {
    threaded_batch_writer writer(db, sched, 0);
    writer.submit(batch, [](status) {});
  }  // joins: the batch is written before the writer is gone
  auto stored = db.find_message("chat", 7);
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->has_value());
}

}  // namespace
}  // namespace parley::chat
