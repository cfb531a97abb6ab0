#include "net/shard_pool.hpp"

#include "util/log.hpp"

namespace parley::net {

namespace {
// Which shard the current thread runs; npos elsewhere. One per process is enough: a process
// has one shard_pool.
thread_local std::size_t t_current_shard = static_cast<std::size_t>(-1);
}  // namespace

shard_pool::shard_pool(std::size_t shards) {
  for (std::size_t i = 0; i < shards; ++i) {
    // concurrency hint 1: each io_context is run by exactly one thread, so Asio can skip locks.
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.push_back(boost::asio::make_work_guard(*contexts_.back()));
  }
}

shard_pool::~shard_pool() { stop(); }

std::size_t shard_pool::current() const {
  return t_current_shard < contexts_.size() ? t_current_shard : contexts_.size();
}

std::size_t shard_pool::this_thread_shard() { return t_current_shard; }

void shard_pool::start() {
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] {
      t_current_shard = i;
      for (;;) {
        try {
          contexts_[i]->run();
          break;
        } catch (const std::exception& e) {
          // A handler must not throw; if one did, log it and keep the shard serving.
          util::log_error("shard {}: unhandled exception: {}", i, e.what());
        }
      }
    });
  }
}

void shard_pool::stop() {
  // Work still pending (idle keep-alive reads, timers) is abandoned: the server has already
  // closed its connections and every acknowledged change is durable.
  for (auto& g : guards_) g.reset();
  for (auto& c : contexts_) c->stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace parley::net
