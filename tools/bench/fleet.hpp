// fleet — many authenticated Parley connections spread over client threads (each with its
// own io_context) and over loopback source addresses, for the load generator.
//
// A connection authenticates, waits for `synced`, then hands every frame to its scenario.
// Set-up requests (chat.open, group.create) carry string ids ("s1", ...) and get callbacks;
// the hot path (send) uses numeric ids that hold the scheduled send time in nanoseconds, so
// a reply carries its own latency start and needs no bookkeeping.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/ws_client.hpp"

namespace parley::bench {

struct account {
  std::string username;
  std::string user_id;
  std::string token;
};

// A `msg` event, parsed just enough for the scenarios.
struct msg_event {
  std::string_view chat;
  std::uint64_t seq = 0;
  std::string_view text;
};

struct connection;
using msg_handler = std::function<void(connection&, const msg_event&)>;

struct connection {
  std::size_t index = 0;
  std::size_t thread = 0;
  account acct;
  std::shared_ptr<client::ws_client> ws;
  bool synced = false;
  bool closed = false;
  int close_code = 0;
  std::int64_t connect_started_ns = 0;
  std::int64_t synced_ns = 0;
  std::uint64_t msgs_before_synced = 0;
  msg_handler on_msg;
  // Set-up requests waiting for their reply.
  std::unordered_map<std::string, std::function<void(std::string_view)>> pending;
  std::uint64_t next_request = 0;
  // Scenario state.
  std::string chat;
  std::uint64_t last_seq = 0;
  std::uint64_t acked_seq = 0;
};

// Per-thread counters, merged at the end (no sharing on the hot path).
struct thread_counters {
  std::uint64_t send_ok = 0;
  std::uint64_t send_err = 0;
  std::uint64_t rate_limited = 0;
  std::uint64_t msgs = 0;
  std::uint64_t closes = 0;
  std::vector<std::int64_t> ack_latency_ns;
};

class fleet {
 public:
  struct options {
    client::endpoint_address server;
    std::size_t threads = 1;
    std::size_t source_addresses = 1;  // 127.0.0.2, .3, ... (0: the default address)
    std::size_t connect_window = 500;  // connections being set up at once
    bool beast_client = false;         // Beast's client instead of the lean one (comparisons)
  };

  explicit fleet(options opts);
  ~fleet();

  // Connects, authenticates and waits for `synced` on every account; returns how many made
  // it. Blocks the calling (main) thread.
  std::size_t connect_all(const std::vector<account>& accounts, msg_handler on_msg);
  // Runs `fn` on the thread of `c` (post).
  void post(connection& c, std::function<void()> fn);
  void post_thread(std::size_t thread, std::function<void()> fn);
  // Sends a set-up request `{"op":...}` (given without id) and calls `done` with the reply.
  void request(connection& c, const std::string& op_json, std::function<void(std::string_view)> done);
  // Runs `fn(c)` for every connection on its thread and waits for all. The threads run it at
  // the same time: whatever `fn` shares must be atomic.
  void for_each_blocking(const std::function<void(connection&)>& fn);
  // Stops handing `msg` events to the scenario (whose state is about to go away).
  void drop_handlers() {
    for_each_blocking([](connection& c) { c.on_msg = nullptr; });
  }
  // Closes every connection and waits briefly.
  void close_all();

  std::vector<std::unique_ptr<connection>>& connections() { return conns_; }
  boost::asio::io_context& io(std::size_t thread) { return *ios_[thread]; }
  std::size_t threads() const { return ios_.size(); }
  thread_counters& counters(std::size_t thread) { return counters_[thread]; }
  // Latencies are recorded only for sends scheduled at or after this time (the warm-up ends).
  void measure_from(std::int64_t ns) { measure_from_.store(ns, std::memory_order_relaxed); }
  bool measuring(std::int64_t scheduled_ns) const {
    return scheduled_ns >= measure_from_.load(std::memory_order_relaxed);
  }

 private:
  void start_connection(connection& c, std::atomic<std::size_t>& done,
                        std::atomic<std::size_t>& ok);
  void on_frame(connection& c, std::string_view frame);

  options opts_;
  std::vector<std::unique_ptr<boost::asio::io_context>> ios_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::vector<thread_counters> counters_;
  std::vector<std::unique_ptr<connection>> conns_;
  std::atomic<std::int64_t> measure_from_{INT64_MAX};
};

// Pulls `"key":"value"` or `"key":number` out of a server frame (the server writes compact
// JSON with known keys, so a scan is enough on the hot path).
// `after`, when given, is where the search starts and is moved past the field found: a frame's
// fields are then read in the order the server writes them, each frame scanned once.
std::string_view json_string_field(std::string_view frame, std::string_view key,
                                   std::size_t* after = nullptr);
std::uint64_t json_uint_field(std::string_view frame, std::string_view key, bool* found = nullptr,
                              std::size_t* after = nullptr);
std::int64_t steady_ns();

}  // namespace parley::bench
