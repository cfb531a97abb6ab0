// net — moves bytes and frames: the listener, HTTP and WebSocket sessions, outbound queues and
// backpressure. It knows nothing of chat or JSON; it depends on util and Boost.Beast/Asio only.
//
// shard_pool: one io_context per core, each run by one thread ("shard"). A connection lives on
// one shard for its whole life; work for a shard is posted to it, never shared under a lock.
//
// Thread safety: post() and current() may be called from any thread; start/stop/join from the
// owning thread only.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

namespace parley::net {

class shard_pool {
 public:
  explicit shard_pool(std::size_t shards);
  ~shard_pool();

  std::size_t size() const { return contexts_.size(); }
  boost::asio::io_context& context(std::size_t shard) { return *contexts_.at(shard); }
  // The shard whose thread is calling, or size() when called from another thread.
  std::size_t current() const;

  // The shard run by the calling thread, or SIZE_MAX on a thread that runs no shard.
  static std::size_t this_thread_shard();

  // Starts one thread per shard.
  void start();
  // Stops the loops (abandoning pending work) and joins the threads.
  void stop();

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

}  // namespace parley::net
