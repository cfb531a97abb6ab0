#include "net/ws_connection.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <cctype>

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
constexpr int kReadsPerWakeup = 4;  // then yield to the other connections of the shard

// The shard's read buffer: every connection of the shard reads into it and parses there.
char* shard_read_buffer() {
  alignas(64) static thread_local char buffer[64 * 1024];
  return buffer;
}
constexpr std::size_t kShardReadBuffer = 64 * 1024;

bool header_has_token(const http_request& req, http::field f, std::string_view token) {
  auto it = req.find(f);
  if (it == req.end()) return false;
  std::string_view value(it->value().data(), it->value().size());
  while (!value.empty()) {
    auto comma = value.find(',');
    auto part = value.substr(0, comma);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.remove_suffix(1);
    if (boost::beast::iequals(part, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

bool valid_client_key(std::string_view key) {
  // 16 random bytes in base64: 24 characters, the last two "==".
  if (key.size() != 24 || !key.ends_with("==")) return false;
  for (char c : key.substr(0, 22)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/') return false;
  }
  return true;
}

http_response refuse(http::status status, unsigned version, std::string_view message) {
  http_response res{status, version};
  res.set(http::field::server, "parley");
  res.set(http::field::content_type, "application/json");
  res.body() = R"({"error":{"code":"bad_request","message":")" + std::string(message) + "\"}}";
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

frame_ptr close_payload(int code) {
  std::string p(2, '\0');
  p[0] = static_cast<char>((code >> 8) & 0xff);
  p[1] = static_cast<char>(code & 0xff);
  return std::make_shared<const std::string>(std::move(p));
}

}  // namespace

std::optional<http_response> check_upgrade(const http_request& req) {
  const unsigned version = req.version();
  if (req.method() != http::verb::get || version < 11)
    return refuse(http::status::bad_request, version, "a WebSocket upgrade is a GET over HTTP/1.1");
  if (!header_has_token(req, http::field::connection, "upgrade") ||
      !header_has_token(req, http::field::upgrade, "websocket"))
    return refuse(http::status::bad_request, version, "not a WebSocket upgrade");
  auto ws_version = req[http::field::sec_websocket_version];
  if (ws_version != "13") {
    auto res = refuse(http::status::upgrade_required, version, "WebSocket version 13 is required");
    res.set(http::field::sec_websocket_version, "13");
    return res;
  }
  auto key = req[http::field::sec_websocket_key];
  if (!valid_client_key(std::string_view(key.data(), key.size())))
    return refuse(http::status::bad_request, version, "bad Sec-WebSocket-Key");
  return std::nullopt;
}

ws_connection::ws_connection(std::size_t shard, tcp::socket socket, std::string remote,
                             const server_options& opts, shard_state& state)
    : shard_(shard),
      socket_(std::move(socket)),
      remote_(std::move(remote)),
      opts_(opts),
      state_(state),
      reader_(opts.max_frame_bytes),
      last_activity_(steady_now_ms()) {
  boost::system::error_code ignored;
  socket_.non_blocking(true, ignored);
}

ws_connection::~ws_connection() = default;

bool ws_connection::on_shard() const { return shard_pool::this_thread_shard() == shard_; }

void ws_connection::touch() { last_activity_ = steady_now_ms(); }

void ws_connection::start(const http_request& upgrade, std::string early, ws_open_handler& on_open) {
  state_.connections.insert(this);
  auto key = upgrade[http::field::sec_websocket_key];
  std::string answer =
      "HTTP/1.1 101 Switching Protocols\r\nServer: parley\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
      ws::accept_key(std::string_view(key.data(), key.size())) + "\r\n\r\n";
  queue(std::make_shared<const std::string>(std::move(answer)), item_kind::raw);
  touch();
  handler_ = on_open(shared_from_this(), upgrade);
  if (!early.empty()) {
    reader_.feed(early.data(), early.size(), [this](const ws::reader_event& ev) { return on_event(ev); });
  }
  if (!gone_) wait_readable();
}

void ws_connection::send(frame_ptr frame) {
  if (!on_shard()) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), frame = std::move(frame)]() mutable {
      self->send(std::move(frame));
    });
    return;
  }
  if (close_code_ != 0 || gone_) return;
  queue(std::move(frame), item_kind::text);
  // The bound is on backlog: one frame larger than it (a big reply) still goes out alone.
  if (queued_ > opts_.outbound_max_bytes && (queue_.size() > 1 || !in_flight_.empty())) {
    util::log_info("closing slow consumer {} ({} bytes queued)", remote_, queued_);
    close(kCloseTryAgain);
  }
}

void ws_connection::close(int code) {
  if (!on_shard()) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), code] { self->close(code); });
    return;
  }
  if (close_code_ != 0 || gone_) return;
  close_code_ = code;
  drain_waiters_.clear();
  // For the application the connection ends now, not when the peer answers the close (a dead
  // peer never does): its user may go offline at once. Posted, because close() can be reached
  // from inside the handler's own calls.
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->notify_closed(); });
  // A slow consumer's backlog is dropped (it resumes from its cursors); otherwise what is
  // queued (an error reply before a 4001, say) is written before the close frame.
  if (code == kCloseTryAgain) drop_queue();
  queue(close_payload(code), item_kind::close);
}

void ws_connection::when_drained(std::function<void()> fn) {
  if (close_code_ != 0 || gone_) return;
  if (queued_ <= opts_.outbound_low_water) {
    asio::post(socket_.get_executor(), std::move(fn));
  } else {
    drain_waiters_.push_back(std::move(fn));
  }
}

void ws_connection::set_deadline(std::int64_t deadline_ms, int code) {
  deadline_ms_ = deadline_ms;
  deadline_code_ = code;
}

void ws_connection::abort() {
  if (gone_) return;
  finish();
}

void ws_connection::sweep(std::int64_t now) {
  if (gone_) return;
  if (writing_ && now - write_started_ms_ >= opts_.write_timeout.count()) {
    // The peer stopped reading: nothing can be written, not even a close frame.
    if (close_code_ == 0)
      util::log_info("dropping {}: a write made no progress for {} ms", remote_, now - write_started_ms_);
    finish();
  } else if (close_written_) {
    // Waiting for the peer's close frame (or its end of the connection).
    if (now - close_sent_ms_ >= opts_.handshake_timeout.count()) finish();
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
  if (!writing_ && queue_.empty()) {
    if (in_flight_.capacity() > 0) {
      in_flight_ = {};
      headers_ = {};
      buffers_ = {};
    }
    if (queue_.capacity() > 0) queue_ = {};
    reader_.trim();
  }
}

// ---- reading ----

bool ws_connection::backlogged() const {
  // Past a quarter of the outbound bound, a client's own requests wait: their replies would
  // otherwise pile up and close it as a slow consumer (1013).
  return queued_ > opts_.outbound_max_bytes / 4;
}

void ws_connection::wait_readable() {
  if (reading_ || gone_) return;
  if (backlogged()) {
    read_paused_ = true;  // resumed by on_written once the queue is below its low-water mark
    return;
  }
  reading_ = true;
  socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const boost::system::error_code& ec) {
    self->reading_ = false;
    if (self->gone_) return;
    if (ec) {
      if (ec != asio::error::operation_aborted) self->finish();
      return;
    }
    self->on_readable();
  });
}

void ws_connection::on_readable() {
  char* buffer = shard_read_buffer();
  for (int i = 0; i < kReadsPerWakeup && !gone_; ++i) {
    boost::system::error_code ec;
    auto n = socket_.read_some(asio::buffer(buffer, kShardReadBuffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) {
      // The peer is gone (or closed its side): nothing more will arrive.
      if (ec != asio::error::eof && ec != asio::error::connection_reset)
        util::log_debug("connection {} ended: {}", remote_, ec.message());
      finish();
      return;
    }
    touch();  // every frame counts as a heartbeat, control frames included (PROTOCOL §4.7)
    reader_.feed(buffer, n, [this](const ws::reader_event& ev) { return on_event(ev); });
    if (n < kShardReadBuffer || backlogged()) break;  // drained for now, or replies first
  }
  if (!gone_) wait_readable();
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
  if (kind != item_kind::raw) queued_ += data->size();
  queue_.push_back({std::move(data), kind});
  schedule_flush();
}

void ws_connection::schedule_flush() {
  if (flush_scheduled_ || writing_ || gone_) return;
  flush_scheduled_ = true;
  // At the end of this loop pass: whatever else is queued meanwhile goes in the same write.
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->flush_scheduled_ = false;
    self->flush();
  });
}

void ws_connection::flush() {
  if (writing_ || gone_ || queue_.empty()) return;
  std::size_t count = 0, bytes = 0;
  while (count < queue_.size() && count < kMaxBatchFrames && (count == 0 || bytes < kMaxBatchBytes)) {
    bytes += queue_[count].data->size();
    ++count;
  }
  in_flight_.clear();
  headers_.resize(count);
  buffers_.clear();
  for (std::size_t i = 0; i < count; ++i) {
    auto& it = queue_[i];
    if (it.kind != item_kind::raw) {
      auto op = it.kind == item_kind::text    ? ws::opcode::text
                : it.kind == item_kind::close ? ws::opcode::close
                                              : ws::opcode::pong;
      auto n = ws::write_frame_header(op, it.data->size(), headers_[i].data());
      buffers_.emplace_back(headers_[i].data(), n);
    }
    if (!it.data->empty()) buffers_.emplace_back(it.data->data(), it.data->size());
    in_flight_.push_back(std::move(it));
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(count));
  writing_ = true;
  write_started_ms_ = steady_now_ms();
  // async_write tries the write at once (one writev of every buffer) and waits for
  // writability only when the socket's send buffer is full.
  asio::async_write(socket_, buffers_,
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                      self->on_written(ec);
                    });
}

void ws_connection::on_written(const boost::system::error_code& ec) {
  writing_ = false;
  bool wrote_close = false;
  for (const auto& it : in_flight_) {
    if (it.kind != item_kind::raw) queued_ -= it.data->size();
    if (it.kind == item_kind::close) wrote_close = true;
  }
  in_flight_.clear();
  if (gone_) return;
  if (ec) {
    finish();
    return;
  }
  if (wrote_close) {
    close_written_ = true;
    close_sent_ms_ = steady_now_ms();
    if (peer_closed_) {
      finish();
      return;
    }
    // Nothing follows a close frame; the peer's close (or its end of the connection) is
    // awaited by the read side, bounded by the sweep.
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    drop_queue();
    return;
  }
  if (queued_ <= opts_.outbound_low_water && !drain_waiters_.empty()) {
    auto waiters = std::move(drain_waiters_);
    drain_waiters_.clear();
    for (auto& fn : waiters) fn();
  }
  if (read_paused_ && queued_ <= opts_.outbound_low_water) {
    read_paused_ = false;
    wait_readable();
  }
  if (!queue_.empty()) flush();
}

void ws_connection::drop_queue() {
  for (const auto& it : queue_) {
    if (it.kind != item_kind::raw) queued_ -= it.data->size();
  }
  // The 101 answer, if still unsent, must go out before a close frame can mean anything.
  std::erase_if(queue_, [](const item& it) { return it.kind != item_kind::raw; });
}

void ws_connection::notify_closed() {
  if (!handler_) return;
  auto h = std::move(handler_);
  h->on_closed();
}

void ws_connection::finish() {
  if (gone_) return;
  gone_ = true;
  state_.connections.erase(this);
  drain_waiters_.clear();
  queue_.clear();
  notify_closed();
  boost::system::error_code ignored;
  socket_.close(ignored);  // completes the pending wait and write with operation_aborted
}

}  // namespace parley::net
