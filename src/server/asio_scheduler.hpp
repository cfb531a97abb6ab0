// chat::scheduler over the net shards: the domain's owner-shard work runs on the same event
// loops as the connections.
#pragma once

#include <boost/asio/post.hpp>

#include "chat/scheduler.hpp"
#include "net/shard_pool.hpp"

namespace parley::server {

class asio_scheduler final : public chat::scheduler {
 public:
  explicit asio_scheduler(net::shard_pool& pool) : pool_(pool) {}
  std::size_t shard_count() const override { return pool_.size(); }
  std::size_t current_shard() const override { return pool_.current(); }
  void post(std::size_t shard, std::function<void()> task) override {
    boost::asio::post(pool_.context(shard), std::move(task));
  }

 private:
  net::shard_pool& pool_;
};

}  // namespace parley::server
