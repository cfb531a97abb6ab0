// The lean ws_client, for the load generator: the upgrade and the frames by hand on a plain
// socket. Why: parley-bench shares the machine's cores with the server it measures, and with
// Beast's stream it spent more CPU per received frame than the server spent sending it (one
// read operation, completion and timer per message). Here one read takes whatever the socket
// holds and every whole frame in it is handed out in place; frames go out at once with one
// non-blocking send, and what a full send buffer leaves waits for the next single write.
// Once open, the socket is out of Asio: the io_context's epoll set (net::shard_poller, one per
// io_context) reports it, so reading costs no epoll_ctl per wake-up (Asio re-arms a socket on
// every readiness wait).
//
// Scope: what a Parley server sends (unfragmented or fragmented text, close, ping). Frames
// sent are masked with a per-connection random key stream, as RFC 6455 §5.3 requires of a
// client.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>

#include "client/client_socket.hpp"
#include "client/ws_client.hpp"
#include "net/shard_poller.hpp"
#include "net/ws_frame.hpp"

namespace parley::client {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

using net::ws::opcode;

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxMessage = 64 * 1024 * 1024;

class lean_client;

// The epoll set of one io_context's open lean clients: an Asio service, made on first use and
// gone with its io_context (at its shutdown, while Asio's reactor still exists). A client that
// outlives it (held by a handler the io_context destroys) finds it expired.
class client_poller final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;
  explicit client_poller(asio::io_context& io);
  std::weak_ptr<net::shard_poller> poller() { return poller_; }

 private:
  void shutdown() override { poller_.reset(); }
  std::shared_ptr<net::shard_poller> poller_;
};

class lean_client final : public ws_client {
 public:
  explicit lean_client(asio::io_context& io)
      : socket_(io),
        owned_poller_(asio::use_service<client_poller>(io).poller()),
        poller_(live(owned_poller_)),
        rng_(std::random_device{}()) {}
  ~lean_client() override {
    if (fd_ < 0) return;
    // Dropped while open: no later report may reach it (unless the poller is gone already).
    if (auto p = owned_poller_.lock()) p->remove(fd_, this);
    ::close(fd_);
  }

  // The poller reports the open socket.
  void on_ready(std::uint32_t events) {
    if (closed_) return;
    auto self = shared();
    if (blocked_ && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      blocked_ = false;
      if (!poller_.watch_writable(fd_, this, false)) return fail(0, std::string("watch: ") + std::strerror(errno));
      write();
      if (closed_) return;
    }
    // The server's end is reported once, maybe with its last bytes: read on to meet it.
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_ended_ = true;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable();
  }

  void connect(const endpoint_address& where, std::function<void()> on_open,
               message_handler on_message, close_handler on_close) override {
    on_open_ = std::move(on_open);
    on_message_ = std::move(on_message);
    on_close_ = std::move(on_close);
    std::string error;
    auto server = open_client_socket(socket_, where, error);
    if (!error.empty()) return fail(0, error);
    // The key only has to be 16 random bytes in base64; the accept value is not checked (the
    // server is ours, on loopback).
    request_ = "GET " + where.path + " HTTP/1.1\r\nHost: " + where.host + ":" +
               std::to_string(where.port) +
               "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    auto self = shared();
    socket_.async_connect(server, [self](boost::system::error_code ec) {
      if (ec) return self->fail(0, "connect: " + ec.message());
      asio::async_write(self->socket_, asio::buffer(self->request_),
                        [self](boost::system::error_code ec, std::size_t) {
                          if (ec) return self->fail(0, "handshake: " + ec.message());
                          self->read_answer();
                        });
    });
  }

  void send(std::string frame) override { queue_frame(opcode::text, frame); }
  void send_shared(std::shared_ptr<const std::string> frame) override {
    queue_frame(opcode::text, *frame);
  }

  void close(int code) override {
    if (closed_ || closing_) return;
    closing_ = true;
    std::string payload(2, '\0');
    payload[0] = static_cast<char>((code >> 8) & 0xff);
    payload[1] = static_cast<char>(code & 0xff);
    append_frame(opcode::close, payload);
    if (open_ && !blocked_) write();
  }

  bool is_open() const override { return open_ && !closed_; }
  std::size_t queued_bytes() const override { return pending_.size(); }

 private:
  static net::shard_poller& live(const std::weak_ptr<net::shard_poller>& poller) {
    auto p = poller.lock();
    if (!p) throw std::logic_error("lean client created on an io_context that is shutting down");
    return *p;  // owned by the io_context's service, which outlives every running handler
  }

  std::shared_ptr<lean_client> shared() {
    return std::static_pointer_cast<lean_client>(shared_from_this());
  }

  void read_answer() {
    auto self = shared();
    asio::async_read_until(socket_, head_, "\r\n\r\n",
                           [self](boost::system::error_code ec, std::size_t n) {
                             if (ec) return self->fail(0, "handshake: " + ec.message());
                             std::string head(static_cast<const char*>(self->head_.data().data()), n);
                             self->head_.consume(n);
                             if (head.rfind("HTTP/1.1 101", 0) != 0)
                               return self->fail(0, "handshake: " + head.substr(0, head.find('\r')));
                             // Frames that came with the answer.
                             auto rest = self->head_.data();
                             self->buffer_.assign(static_cast<const char*>(rest.data()), rest.size());
                             self->head_.consume(rest.size());
                             if (!self->take_socket()) return;
                             self->open_ = true;
                             if (self->on_open_) self->on_open_();
                             if (self->closed_) return;
                             if (!self->blocked_ && !self->pending_.empty()) self->write();
                             if (!self->parse_buffer()) return;
                             self->on_readable();  // bytes may wait already: read before waiting
                           });
  }

  // Takes the upgraded socket out of Asio into the poller's set, non-blocking.
  bool take_socket() {
    boost::system::error_code ec;
    int fd = socket_.release(ec);  // nothing is pending on it after the handshake
    if (ec) {
      fail(0, "release: " + ec.message());
      return false;
    }
    fd_ = fd;
    if (::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK) != 0 || !poller_.add(fd_, this)) {
      fail(0, std::string("watch: ") + std::strerror(errno));
      return false;
    }
    return true;
  }

  // Reads into the thread's chunk until the socket is drained (the poller reports the next
  // bytes): no read buffer per connection (thousands of them in an idle run), only the tail of
  // an unfinished frame is kept.
  void on_readable() {
    static thread_local std::array<char, kReadChunk> chunk;
    while (!closed_) {
      auto got = ::recv(fd_, chunk.data(), chunk.size(), 0);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (got < 0) return fail(0, std::strerror(errno));
      if (got == 0) return fail(0, "closed");
      auto n = static_cast<std::size_t>(got);
      if (buffer_.empty()) {
        auto used = parse(chunk.data(), n);
        if (closed_) return;
        buffer_.assign(chunk.data() + used, n - used);
      } else {
        buffer_.append(chunk.data(), n);
        if (!parse_buffer()) return;
      }
      if (n < chunk.size() && !peer_ended_) return;  // drained
    }
  }

  bool parse_buffer() {
    auto used = parse(buffer_.data(), buffer_.size());
    if (closed_) return false;
    buffer_.erase(0, used);
    return true;
  }

  // Hands out every whole frame at the start of [data, data + size); returns the bytes used.
  std::size_t parse(const char* data, std::size_t size) {
    std::size_t at = 0;
    const auto* p = reinterpret_cast<const unsigned char*>(data);
    while (size - at >= 2) {
      bool fin = p[at] & 0x80;
      int opcode = p[at] & 0x0f;
      std::uint64_t len = p[at + 1] & 0x7f;
      std::size_t header = 2;
      if (len == 126) {
        if (size - at < 4) break;
        len = (std::uint64_t{p[at + 2]} << 8) | p[at + 3];
        header = 4;
      } else if (len == 127) {
        if (size - at < 10) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | p[at + 2 + i];
        header = 10;
      }
      if (len > kMaxMessage) {
        fail(0, "frame too large");
        return at;
      }
      if (size - at < header + len) break;
      std::string_view payload(data + at + header, static_cast<std::size_t>(len));
      at += header + static_cast<std::size_t>(len);
      if (!on_frame(fin, opcode, payload)) break;
    }
    return at;
  }

  bool on_frame(bool fin, int op, std::string_view payload) {
    switch (static_cast<opcode>(op)) {
      case opcode::continuation:
      case opcode::text:
        if (!fin || !fragments_.empty()) {
          fragments_.append(payload);
          if (!fin) return true;
          std::string whole = std::move(fragments_);
          fragments_.clear();
          if (on_message_) on_message_(whole);
        } else if (on_message_) {
          on_message_(payload);
        }
        return !closed_;
      case opcode::close: {
        int code = payload.size() >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) |
                                             static_cast<unsigned char>(payload[1])
                                       : 1005;
        std::string reason(payload.size() > 2 ? payload.substr(2) : std::string_view());
        fail(code, reason);
        return false;
      }
      case opcode::ping:
        append_frame(opcode::pong, payload);
        if (!blocked_) write();
        return true;
      default:
        return true;  // pong, binary: not sent by the server; ignored
    }
  }

  void queue_frame(opcode op, std::string_view payload) {
    if (closed_ || closing_) return;
    append_frame(op, payload);
    if (open_ && !blocked_) write();
  }

  void append_frame(opcode op, std::string_view payload) {
    // The server's header encoding, with the mask bit a client's frames must carry (§5.3).
    std::uint8_t header[14];
    std::size_t n = net::ws::write_frame_header(op, payload.size(), header);
    header[1] |= 0x80;
    std::uint32_t key = rng_();
    unsigned char mask[4];
    std::memcpy(mask, &key, 4);
    std::memcpy(header + n, mask, 4);
    n += 4;
    pending_.append(reinterpret_cast<const char*>(header), n);
    auto start = pending_.size();
    pending_.append(payload);
    for (std::size_t i = 0; i < payload.size(); ++i) pending_[start + i] ^= static_cast<char>(mask[i & 3]);
  }

  // Sends what is queued; what a full send buffer leaves waits for the poller's report.
  void write() {
    while (!pending_.empty() && !closed_ && !blocked_) {
      auto sent = ::send(fd_, pending_.data(), pending_.size(), MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        blocked_ = true;
        if (!poller_.watch_writable(fd_, this, true)) fail(0, std::string("watch: ") + std::strerror(errno));
        return;
      }
      if (sent < 0) return fail(0, std::string("write: ") + std::strerror(errno));
      pending_.erase(0, static_cast<std::size_t>(sent));
    }
  }

  void fail(int code, const std::string& why) {
    if (closed_) return;
    closed_ = true;
    open_ = false;
    pending_.clear();
    if (fd_ >= 0) {
      poller_.remove(fd_, this);
      ::close(fd_);
      fd_ = -1;
    }
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (on_close_) {
      auto cb = std::move(on_close_);
      cb(code, why);
    }
  }

  tcp::socket socket_;  // until the upgrade; then fd_
  int fd_ = -1;
  std::weak_ptr<net::shard_poller> owned_poller_;  // for the destructor
  net::shard_poller& poller_;  // valid while the io_context runs, so in every handler
  std::mt19937 rng_;
  std::string request_;
  asio::streambuf head_;
  std::function<void()> on_open_;
  message_handler on_message_;
  close_handler on_close_;
  std::string buffer_;     // bytes read and not yet parsed
  std::string fragments_;  // a fragmented message being put together
  std::string pending_;    // frames queued (masked), not yet sent
  bool open_ = false;
  bool blocked_ = false;  // the send buffer is full: waiting for the poller
  bool peer_ended_ = false;  // the poller reported the server's end of the stream, or an error
  bool closing_ = false;
  bool closed_ = false;
};

client_poller::client_poller(asio::io_context& io)
    : service(io),
      poller_(std::make_shared<net::shard_poller>(io, [](void* owner, std::uint32_t events) {
        static_cast<lean_client*>(owner)->on_ready(events);
      })) {}

}  // namespace

std::shared_ptr<ws_client> ws_client::create_lean(asio::io_context& io) {
  return std::make_shared<lean_client>(io);
}

}  // namespace parley::client
