#include "net/ws_connection.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/field.hpp>
#include <cerrno>
#include <cstring>

#include "net/shard_pool.hpp"
#include "util/log.hpp"

namespace parley::net {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr int kCloseGoingAway = 1001;
constexpr int kCloseTryAgain = 1013;  // also a slow consumer's
constexpr std::size_t kMaxBatchFrames = 64;
constexpr std::size_t kMaxBatchBytes = 512 * 1024;
constexpr int kWritesPerFlush = 8;  // then yield to the other connections of the shard
constexpr int kReadsPerWakeup = 4;  // then yield to the other connections of the shard

// The shard's read buffer: every connection of the shard reads into it and parses there.
char* shard_read_buffer() {
  alignas(64) static thread_local char buffer[64 * 1024];
  return buffer;
}
constexpr std::size_t kShardReadBuffer = 64 * 1024;

// The accepted socket's descriptor, taken out of Asio (which stops watching it) and made
// non-blocking; -1 on failure, and then start() ends the connection.
int adopt(tcp::socket accepted) {
  boost::system::error_code ec;
  int fd = accepted.release(ec);  // no operation is pending on it at the upgrade
  if (!ec && ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    ec.assign(errno, boost::system::generic_category());
    ::close(fd);  // released: nobody else would close it (the peer would hang)
  }
  if (!ec) return fd;
  util::log_warn("cannot adopt an upgraded socket: {}", ec.message());
  return -1;
}

frame_ptr close_payload(int code) {
  std::string p(2, '\0');
  p[0] = static_cast<char>((code >> 8) & 0xff);
  p[1] = static_cast<char>(code & 0xff);
  return std::make_shared<const std::string>(std::move(p));
}

}  // namespace

ws_connection::ws_connection(std::size_t shard, tcp::socket socket, std::string remote,
                             const server_options& opts, shard_state& state)
    : remote_(std::move(remote)),
      opts_(opts),
      state_(state),
      reader_(opts.max_frame_bytes),
      last_activity_(steady_now_ms()),
      shard_(static_cast<std::uint32_t>(shard)),
      fd_(adopt(std::move(socket))) {}

ws_connection::~ws_connection() {
  // Only when the connection never finished (its shard stopped first); closing the descriptor
  // also takes it out of the poller's set.
  if (fd_ >= 0) ::close(fd_);
}

bool ws_connection::on_shard() const { return shard_pool::this_thread_shard() == shard_; }

void ws_connection::touch() { last_activity_ = steady_now_ms(); }

void ws_connection::start(const http_request& upgrade, std::string early, ws_open_handler& on_open) {
  state_.connections.emplace(this, shared_from_this());
  auto key = upgrade[http::field::sec_websocket_key];
  std::string answer =
      "HTTP/1.1 101 Switching Protocols\r\nServer: parley\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
      ws::accept_key(std::string_view(key.data(), key.size())) + "\r\n\r\n";
  queue(std::make_shared<const std::string>(std::move(answer)), item_kind::raw);
  touch();
  handler_ = on_open(shared_from_this(), upgrade);
  // Watched only once it has a handler: nothing is read for a connection that has none.
  if (!state_.poller->add(fd_, this)) {
    if (fd_ >= 0) util::log_warn("cannot watch connection {}: {}", remote_, std::strerror(errno));
    finish();
    return;
  }
  if (!early.empty()) {
    reader_.feed(early.data(), early.size(), [this](const ws::reader_event& ev) { return on_event(ev); });
  }
  if (!gone_ && backlogged()) read_paused_ = true;
  read_soon();
}

void ws_connection::send(frame_ptr frame) {
  if (!on_shard()) {
    asio::post(context(), [self = shared_from_this(), frame = std::move(frame)]() mutable {
      self->send(std::move(frame));
    });
    return;
  }
  if (close_code_ != 0 || gone_) return;
  queue(std::move(frame), item_kind::text);
  // The bound is on backlog: one frame larger than it (a big reply) still goes out alone.
  if (queued_ > opts_.outbound_max_bytes && queue_.size() - head_ > 1) {
    util::log_info("closing slow consumer {} ({} bytes queued)", remote_, queued_);
    close(kCloseTryAgain);
  }
}

void ws_connection::close(int code) {
  if (!on_shard()) {
    asio::post(context(), [self = shared_from_this(), code] { self->close(code); });
    return;
  }
  if (close_code_ != 0 || gone_) return;
  close_code_ = static_cast<std::uint16_t>(code);
  drain_waiters_.reset();
  // For the application the connection ends now, not when the peer answers the close (a dead
  // peer never does): its user may go offline at once. Posted, because close() can be reached
  // from inside the handler's own calls.
  asio::post(context(), [self = shared_from_this()] { self->notify_closed(); });
  // A slow consumer's backlog is dropped (it resumes from its cursors); otherwise what is
  // queued (an error reply before a 4001, say) is written before the close frame.
  if (code == kCloseTryAgain) drop_queue();
  queue(close_payload(code), item_kind::close);
}

void ws_connection::when_drained(std::function<void()> fn) {
  if (close_code_ != 0 || gone_) return;
  if (queued_ <= opts_.outbound_low_water) {
    asio::post(context(), std::move(fn));
  } else {
    if (!drain_waiters_) drain_waiters_ = std::make_unique<std::vector<std::function<void()>>>();
    drain_waiters_->push_back(std::move(fn));
  }
}

void ws_connection::set_deadline(std::int64_t deadline_ms, int code) {
  deadline_ms_ = deadline_ms;
  deadline_code_ = static_cast<std::uint16_t>(code);
}

void ws_connection::abort() {
  if (gone_) return;
  finish();
}

void ws_connection::sweep(std::int64_t now) {
  if (gone_) return;
  if (blocked_ && now - blocked_since_ms_ >= opts_.write_timeout.count()) {
    // The peer stopped reading: nothing can be written, not even a close frame.
    if (close_code_ == 0)
      util::log_info("dropping {}: a write made no progress for {} ms", remote_, now - blocked_since_ms_);
    finish();
  } else if (close_written_) {
    // Waiting for the peer's close frame (or its end of the connection). After a protocol
    // violation the reader cannot see that frame any more: only a short wait for the peer to
    // hang up, so that our close frame is read before the connection is cut.
    auto limit = reader_.spent() && !peer_closed_ ? std::min<std::int64_t>(1000, opts_.handshake_timeout.count())
                                                  : opts_.handshake_timeout.count();
    if (now - close_sent_ms_ >= limit) finish();
  } else if (close_code_ != 0) {
    // Closing, with the close frame still queued behind a write: the write timeout decides.
  } else if (deadline_ms_ != 0) {
    // An armed deadline (auth) decides alone: its code says why the connection ends.
    if (now >= deadline_ms_) close(deadline_code_);
  } else if (read_paused_) {
    // Not reading (its replies are still going out): its silence is ours. The write timeout
    // catches a peer that stopped reading.
    last_activity_ = now;
  } else if (now - last_activity_ >= opts_.idle_timeout.count()) {
    util::log_debug("closing silent connection {}", remote_);
    close(kCloseGoingAway);
  }
  // An idle connection keeps no buffers.
  if (!blocked_ && head_ == queue_.size()) {
    if (queue_.capacity() > 0) {
      base_ += queue_.size();
      queue_ = {};
      head_ = 0;
    }
    if (!read_paused_) reader_.trim();
  }
}

// ---- reading ----

bool ws_connection::backlogged() const {
  // Past a quarter of the outbound bound, a client's own requests wait: their replies would
  // otherwise pile up and close it as a slow consumer (1013).
  return queued_ > opts_.outbound_max_bytes / 4;
}

// The poller reports a socket when bytes arrive (edge-triggered), not while they wait: so a
// read goes on until the socket is drained (a short read or EAGAIN), or the connection will read
// again on its own (read_soon(), resume_reading()). Bytes that arrive later are reported anew.
void ws_connection::read_soon() {
  if (read_posted_ || read_paused_ || gone_) return;
  read_posted_ = true;
  asio::post(context(), [self = shared_from_this()] {
    self->read_posted_ = false;
    self->on_readable();
  });
}

void ws_connection::on_ready(std::uint32_t events) {
  if (gone_) return;
  auto self = shared_from_this();  // the registry may drop it on the way (finish)
  if (blocked_ && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    blocked_ = false;
    if (!state_.poller->watch_writable(fd_, this, false)) return finish();
    flush();  // meets the error, if that is what was reported
    if (gone_) return;
  }
  // The peer's end (or an error) is reported once, possibly with its last bytes: remembered, so
  // that reading goes on past a short read to meet it, now or after a pause.
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_ended_ = true;
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !read_posted_) on_readable();
}

void ws_connection::on_readable() {
  if (gone_ || read_paused_) return;
  char* buffer = shard_read_buffer();
  for (int i = 0; i < kReadsPerWakeup; ++i) {
    auto n = ::recv(fd_, buffer, kShardReadBuffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // drained
    if (n <= 0) {
      // The peer is gone (or closed its side): nothing more will arrive.
      if (n < 0 && errno != ECONNRESET)
        util::log_debug("connection {} ended: {}", remote_, std::strerror(errno));
      finish();
      return;
    }
    touch();  // every frame counts as a heartbeat, control frames included (PROTOCOL §4.7)
    reader_.feed(buffer, static_cast<std::size_t>(n), [this](const ws::reader_event& ev) { return on_event(ev); });
    if (gone_) return;
    if (backlogged()) {
      read_paused_ = true;  // resume_reading() continues once the replies are out
      return;
    }
    // Drained for now; unless the peer ended, whose end the next read returns (0 or an error)
    // and no later report would announce.
    if (static_cast<std::size_t>(n) < kShardReadBuffer && !peer_ended_) return;
  }
  read_soon();  // more is waiting: read it after the shard's other connections had their turn
}

void ws_connection::resume_reading() {
  if (!read_paused_ || gone_) return;
  read_paused_ = false;
  // First the frames that the pause left parsed-but-unhandled in the reader.
  reader_.resume([this](const ws::reader_event& ev) { return on_event(ev); });
  if (gone_) return;
  if (backlogged()) {
    read_paused_ = true;
    return;
  }
  read_soon();
}

bool ws_connection::on_event(const ws::reader_event& ev) {
  using kind = ws::reader_event::kind;
  switch (ev.what) {
    case kind::message:
      if (close_code_ != 0) return true;  // closing: discard until the peer's close frame
      try {
        handler_->on_text(ev.payload);
      } catch (const std::exception& e) {
        // Nothing should throw here but bad_alloc; if it does, end this connection cleanly.
        util::log_error("connection {}: {}", remote_, e.what());
        close(kCloseTryAgain);
      }
      // Replies backing up: the next messages wait, unparsed, until they are out.
      if (backlogged() && close_code_ == 0) reader_.pause();
      return !gone_;
    case kind::ping:
      if (close_code_ == 0) queue(std::make_shared<const std::string>(ev.payload), item_kind::pong);
      return true;
    case kind::pong:
      return true;
    case kind::binary:
      close(ws::kCloseUnsupportedData);
      return false;
    case kind::violation:
      close(ev.close_code);
      return false;
    case kind::close:
      peer_closed_ = true;
      if (close_code_ == 0) {
        close(ev.close_code == 1005 ? ws::kCloseNormal : ev.close_code);  // echo it (§5.5.1)
      } else if (close_written_) {
        finish();  // both close frames are out: the handshake is complete
      }
      return false;
  }
  return true;
}

// ---- writing ----

void ws_connection::queue(frame_ptr data, item_kind kind) {
  // One pong waits at most: it answers the latest ping (RFC 6455 §5.5.3), so a flood of pings
  // cannot grow the queue. A pong already partly written is left to finish.
  if (kind == item_kind::pong && pong_at_ != kNoPong && !(pong_at_ == base_ + head_ && sent_ > 0)) {
    auto& waiting = queue_[static_cast<std::size_t>(pong_at_ - base_)];
    queued_ = queued_ - waiting.data->size() + data->size();
    waiting.data = std::move(data);
    return;
  }
  if (kind != item_kind::raw) queued_ += data->size();
  if (kind == item_kind::pong) pong_at_ = base_ + queue_.size();
  queue_.push_back({std::move(data), kind});
  schedule_flush();
}

void ws_connection::schedule_flush() {
  if (flush_scheduled_ || blocked_ || gone_) return;
  flush_scheduled_ = true;
  state_.to_flush.push_back(shared_from_this());
  if (state_.flush_posted) return;
  state_.flush_posted = true;
  // At the end of this loop pass: whatever else is queued meanwhile goes in the same write.
  asio::post(context(), [&state = state_] { flush_shard(state); });
}

void ws_connection::flush_shard(shard_state& state) {
  state.flush_posted = false;
  std::vector<std::shared_ptr<ws_connection>> list;
  list.swap(state.to_flush);
  for (auto& c : list) {
    c->flush_scheduled_ = false;
    c->flush();
  }
  // Hand the list's buffer back for the next pass, unless flushing queued a new list.
  list.clear();
  if (state.to_flush.empty()) state.to_flush.swap(list);
}

void ws_connection::flush() {
  // The frames of one sendmsg: their headers and scatter-gather entries, per thread (a flush
  // never yields in the middle), so that no connection holds write buffers of its own.
  struct scratch {
    std::array<std::array<std::uint8_t, 10>, kMaxBatchFrames> headers;
    std::array<iovec, 2 * kMaxBatchFrames> iov;
  };
  static thread_local scratch sc;

  // A fast reader could take a whole replay in one flush (each write's progress lets the replay
  // queue its next chunk): after a few writes the rest waits for the next loop pass, so that
  // the shard's other connections get their turn.
  for (int writes = 0; !blocked_ && !gone_ && head_ != queue_.size(); ++writes) {
    if (writes == kWritesPerFlush) {
      schedule_flush();
      return;
    }
    std::size_t iovs = 0, frames = 0, bytes = 0;
    std::size_t skip = sent_;  // the first frame's bytes written by an earlier, partial write
    auto add = [&](const void* data, std::size_t n) {
      if (skip >= n) {
        skip -= n;
        return;
      }
      sc.iov[iovs++] = {const_cast<char*>(static_cast<const char*>(data)) + skip, n - skip};
      bytes += n - skip;
      skip = 0;
    };
    for (std::size_t i = head_; i < queue_.size() && frames < kMaxBatchFrames &&
                                (frames == 0 || bytes < kMaxBatchBytes);
         ++i, ++frames) {
      const auto& it = queue_[i];
      if (it.kind != item_kind::raw) {
        auto op = it.kind == item_kind::text    ? ws::opcode::text
                  : it.kind == item_kind::close ? ws::opcode::close
                                                : ws::opcode::pong;
        auto n = ws::write_frame_header(op, it.data->size(), sc.headers[frames].data());
        add(sc.headers[frames].data(), n);
      }
      if (!it.data->empty()) add(it.data->data(), it.data->size());
    }
    msghdr msg{};
    msg.msg_iov = sc.iov.data();
    msg.msg_iovlen = iovs;
    ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return wait_writable();
      util::log_debug("connection {}: write failed: {}", remote_, std::strerror(errno));
      return finish();
    }
    if (!consume(static_cast<std::size_t>(n))) return;
    if (static_cast<std::size_t>(n) < bytes) return wait_writable();  // the send buffer is full
  }
}

bool ws_connection::consume(std::size_t written) {
  bool wrote_close = false;
  while (written > 0) {
    auto& it = queue_[head_];
    std::size_t size = it.data->size() + (it.kind == item_kind::raw ? 0 : ws::frame_header_size(it.data->size()));
    if (written < size - sent_) {
      sent_ += written;
      break;
    }
    written -= size - sent_;
    sent_ = 0;
    if (it.kind != item_kind::raw) queued_ -= it.data->size();
    if (it.kind == item_kind::close) wrote_close = true;
    if (pong_at_ == base_ + head_) pong_at_ = kNoPong;
    it.data.reset();
    ++head_;
  }
  if (head_ == queue_.size()) {
    base_ += queue_.size();
    queue_.clear();
    head_ = 0;
  } else if (head_ >= kMaxBatchFrames && head_ * 2 >= queue_.size()) {
    // Compact now and then (amortised O(1) per item), not on every write.
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(head_));
    base_ += head_;
    head_ = 0;
  }

  if (wrote_close) {
    close_written_ = true;
    close_sent_ms_ = steady_now_ms();
    if (peer_closed_) {
      finish();
      return false;
    }
    // Nothing follows a close frame; the peer's close (or its end of the connection) is
    // awaited by the read side, bounded by the sweep. Reading resumes if a backlog paused it.
    ::shutdown(fd_, SHUT_WR);
    drop_queue();
    read_paused_ = false;
    read_soon();
    return false;
  }
  if (queued_ <= opts_.outbound_low_water && drain_waiters_) {
    // Posted, not run here: a waiter (a replay's next chunk) queues more, which this flush
    // would otherwise write at once, and so on to the end of the replay in one task.
    auto waiters = std::move(drain_waiters_);
    for (auto& fn : *waiters) asio::post(context(), std::move(fn));
  }
  if (read_paused_ && queued_ <= opts_.outbound_low_water) resume_reading();
  return !gone_;
}

void ws_connection::wait_writable() {
  blocked_ = true;
  blocked_since_ms_ = steady_now_ms();
  if (!state_.poller->watch_writable(fd_, this, true)) finish();  // on_ready() continues
}

void ws_connection::drop_queue() {
  // A frame partly written must be finished, or the stream would be corrupt.
  auto live = queue_.begin() + static_cast<std::ptrdiff_t>(head_ + (sent_ > 0 ? 1 : 0));
  if (live > queue_.end()) live = queue_.end();
  for (auto it = live; it != queue_.end(); ++it) {
    if (it->kind != item_kind::raw) queued_ -= it->data->size();
  }
  // The 101 answer, if still unsent, must go out before a close frame can mean anything.
  queue_.erase(std::remove_if(live, queue_.end(), [](const item& it) { return it.kind != item_kind::raw; }),
               queue_.end());
  if (pong_at_ != kNoPong && pong_at_ >= base_ + queue_.size()) pong_at_ = kNoPong;
}

void ws_connection::notify_closed() {
  if (!handler_) return;
  auto h = std::move(handler_);
  h->on_closed();
}

void ws_connection::finish() {
  if (gone_) return;
  auto self = shared_from_this();  // the registry may hold the last reference
  gone_ = true;
  state_.connections.erase(this);
  drain_waiters_.reset();
  base_ += queue_.size();
  queue_.clear();
  head_ = 0;
  sent_ = 0;
  pong_at_ = kNoPong;
  notify_closed();
  if (fd_ >= 0) {
    state_.poller->remove(fd_, this);
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace parley::net
