#include "chat/batch_writer.hpp"

#include <pthread.h>

namespace parley::chat {

void inline_batch_writer::submit(const write_batch& batch, std::function<void(status)> done) {
  status written = db_.write(batch);
  sched_.post(shard_, [done = std::move(done), written = std::move(written)]() mutable {
    done(std::move(written));
  });
}

threaded_batch_writer::threaded_batch_writer(store& db, scheduler& sched, std::size_t shard)
    : db_(db), sched_(sched), shard_(shard), thread_([this] { run(); }) {}

threaded_batch_writer::~threaded_batch_writer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void threaded_batch_writer::submit(const write_batch& batch, std::function<void(status)> done) {
  {
    std::lock_guard lock(mutex_);
    job_ = &batch;
    done_ = std::move(done);
  }
  wake_.notify_one();
}

void threaded_batch_writer::run() {
  std::string name = "parley-write-" + std::to_string(shard_);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return job_ != nullptr || stopping_; });
    if (job_ == nullptr) return;  // stopping, nothing left to write
    const write_batch* job = std::exchange(job_, nullptr);
    auto done = std::move(done_);
    done_ = nullptr;
    lock.unlock();
    status written = db_.write(*job);
    sched_.post(shard_, [done = std::move(done), written = std::move(written)]() mutable {
      done(std::move(written));
    });
    lock.lock();
  }
}

}  // namespace parley::chat
