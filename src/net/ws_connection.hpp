// net::ws_connection — one WebSocket connection on the socket of its shard, without Beast's
// websocket::stream (why: ws_frame.hpp). Internal to net (server.cpp creates them).
//
// Reading: the shard's poller reports the socket readable (no buffer, no coroutine frame, no
// pending operation while idle); the connection then reads into its shard's buffer until it is
// drained and parses there; only an unfinished frame or fragmented message is copied into the
// connection.
// Writing (corking): send() queues a shared frame and puts the connection on its shard's flush
// list; at the end of the loop pass the shard flushes every listed connection (one posted task
// for all of them, not one per connection). A flush writes what is queued right away with one
// non-blocking sendmsg of every frame (headers beside them, from a per-thread scratch area);
// only a socket whose send buffer is full keeps the rest and waits for writability. So a
// connection holds no write buffers of its own, and a group message to 255 members costs one
// task and 255 system calls, not 255 tasks, operations and completions.
// Backpressure: while more than a quarter of outbound_max_bytes waits to be written, the
// connection stops reading (its own requests would only add replies), and resumes below the
// low-water mark.
// Closing: the close frame follows what is queued (a slow consumer's backlog, 1013, is
// dropped instead); then the send side is shut down and the connection waits, reading, for the
// peer to close (bounded by handshake_timeout, enforced by the shard's sweep).
//
// Thread safety: as net::connection; everything else runs on the connection's shard.
#pragma once

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/connection.hpp"
#include "net/server.hpp"
#include "net/shard_poller.hpp"
#include "net/ws_frame.hpp"

namespace parley::net {

class ws_connection;

// The connections of one shard, for the sweep and for shutdown. Touched only on its shard. It
// owns them from the upgrade until they finish, so that a connection with nothing pending (a
// paused read, say) is never freed while the sweep can still reach it.
struct shard_state {
  std::unordered_map<const ws_connection*, std::shared_ptr<ws_connection>> connections;
  // Connections with frames queued in this loop pass, flushed together at its end.
  std::vector<std::shared_ptr<ws_connection>> to_flush;
  bool flush_posted = false;
  // Readiness of the shard's sockets; reports go to ws_connection::on_ready.
  std::unique_ptr<shard_poller> poller;
};

class ws_connection final : public connection, public std::enable_shared_from_this<ws_connection> {
 public:
  // Takes the socket's descriptor out of Asio (state.poller watches it from start() on).
  ws_connection(std::size_t shard, boost::asio::ip::tcp::socket socket, std::string remote,
                const server_options& opts, shard_state& state);
  ~ws_connection() override;

  // Answers the (checked) upgrade with 101, creates the handler, and starts reading; `early`
  // holds bytes the client sent right after its upgrade request (its first frames).
  void start(const http_request& upgrade, std::string early, ws_open_handler& on_open);

  std::size_t shard() const override { return shard_; }
  const std::string& remote_address() const override { return remote_; }
  std::size_t queued_bytes() const override { return queued_; }
  void send(frame_ptr frame) override;
  void close(int code) override;
  void when_drained(std::function<void()> fn) override;
  void set_deadline(std::int64_t deadline_ms, int code) override;

  // Cuts the TCP connection without a closing handshake (shutdown past its grace period).
  void abort();
  // The shard's poller reports the socket: `events` are epoll's (EPOLLIN, EPOLLOUT, ...).
  void on_ready(std::uint32_t events);
  // Deadlines and idleness; called by the shard's sweep about once per sweep interval.
  void sweep(std::int64_t now);

 private:
  enum class item_kind : std::uint8_t { raw, text, close, pong };
  struct item {
    frame_ptr data;
    item_kind kind;
  };

  bool on_shard() const;
  boost::asio::io_context& context() const { return state_.poller->context(); }
  bool backlogged() const;
  void touch();
  // Reading: read_soon() posts a read attempt; on_readable() reads until the socket is drained.
  void read_soon();
  void on_readable();
  void resume_reading();
  // Handles one parsed event; false to stop parsing what remains.
  bool on_event(const ws::reader_event& ev);
  void queue(frame_ptr data, item_kind kind);
  void schedule_flush();
  static void flush_shard(shard_state& state);
  // Writes what is queued until done or the socket's buffer is full (then waits for it).
  void flush();
  // Drops the `bytes` just written from the front of the queue; false if the connection ended.
  bool consume(std::size_t bytes);
  void wait_writable();
  void drop_queue();
  void notify_closed();
  void finish();  // the connection is over: unregister, tell the handler, close the socket

  std::string remote_;
  const server_options& opts_;
  shard_state& state_;
  std::shared_ptr<connection_handler> handler_;
  ws::frame_reader reader_;

  // Queued items are queue_[head_..]; the ones before head_ are taken (flush) and compacted
  // away now and then. base_ is the count of items ever removed from the vector's front, so an
  // item's absolute number (base_ + its index) survives compaction.
  std::vector<item> queue_;
  std::uint64_t base_ = 0;
  std::uint64_t pong_at_ = kNoPong;  // absolute number of the queued pong (at most one)
  static constexpr std::uint64_t kNoPong = ~std::uint64_t{0};
  std::size_t sent_ = 0;     // bytes of queue_[head_] (header included) already written
  std::size_t queued_ = 0;  // payload bytes in queue_
  // Rare (a replay paced by its queue): allocated on first use, to keep idle connections small.
  std::unique_ptr<std::vector<std::function<void()>>> drain_waiters_;

  std::int64_t last_activity_ = 0;
  std::int64_t deadline_ms_ = 0;
  std::int64_t blocked_since_ms_ = 0;  // when the socket's send buffer filled up
  std::int64_t close_sent_ms_ = 0;
  // Small fields together: this object is most of an idle connection.
  std::uint32_t head_ = 0;  // the first item of queue_ not written yet (see queue_)
  std::uint32_t shard_;
  int fd_ = -1;  // the socket; -1 once closed
  std::uint16_t deadline_code_ = 0;
  std::uint16_t close_code_ = 0;  // the code of our close frame, once closing
  // Bits: with them the object fits the next smaller allocation class.
  bool blocked_ : 1 = false;  // waiting for the socket to become writable
  bool flush_scheduled_ : 1 = false;
  bool read_posted_ : 1 = false;   // a read attempt is posted
  bool read_paused_ : 1 = false;   // not reading until the queue drains (backlogged())
  bool close_written_ : 1 = false;
  bool peer_closed_ : 1 = false;  // the peer's close frame arrived
  bool peer_ended_ : 1 = false;   // the poller reported the peer's end of the stream, or an error
  bool gone_ : 1 = false;
};

}  // namespace parley::net
