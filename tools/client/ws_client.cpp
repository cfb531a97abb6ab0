#include "client/ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <deque>

#include "client/client_socket.hpp"

namespace parley::client {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

class beast_client final : public ws_client {
 public:
  explicit beast_client(asio::io_context& io) : ws_(io) {}

  void connect(const endpoint_address& where, std::function<void()> on_open,
               message_handler on_message, close_handler on_close) override {
    where_ = where;
    on_open_ = std::move(on_open);
    on_message_ = std::move(on_message);
    on_close_ = std::move(on_close);
    auto& sock = beast::get_lowest_layer(ws_).socket();
    std::string error;
    auto server = open_client_socket(sock, where, error);
    if (!error.empty()) return fail(0, error);
    auto self = std::static_pointer_cast<beast_client>(shared_from_this());
    sock.async_connect(server, [self](beast::error_code ec) {
      if (ec) return self->fail(0, "connect: " + ec.message());
      self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
      self->ws_.read_message_max(64 * 1024 * 1024);
      self->ws_.async_handshake(self->where_.host + ":" + std::to_string(self->where_.port),
                                self->where_.path, [self](beast::error_code ec) {
                                  if (ec) return self->fail(0, "handshake: " + ec.message());
                                  self->open_ = true;
                                  self->read();
                                  if (self->on_open_) self->on_open_();
                                  if (!self->writing_ && !self->queue_.empty()) self->write();
                                });
    });
  }

  void send(std::string frame) override {
    send_shared(std::make_shared<const std::string>(std::move(frame)));
  }

  void send_shared(std::shared_ptr<const std::string> frame) override {
    if (closed_) return;
    queued_ += frame->size();
    queue_.push_back(std::move(frame));
    if (open_ && !writing_) write();
  }

  void close(int code) override {
    if (closed_ || closing_) return;
    closing_ = true;
    close_code_ = code;
    if (open_ && !writing_) write();
  }

  bool is_open() const override { return open_ && !closed_; }
  std::size_t queued_bytes() const override { return queued_; }

 private:
  void read() {
    auto self = std::static_pointer_cast<beast_client>(shared_from_this());
    ws_.async_read(buffer_, [self](beast::error_code ec, std::size_t) {
      if (ec) {
        int code = ec == websocket::error::closed ? self->ws_.reason().code : 0;
        return self->fail(code, ec == websocket::error::closed
                                    ? std::string(self->ws_.reason().reason.c_str())
                                    : ec.message());
      }
      auto data = self->buffer_.cdata();
      if (self->on_message_)
        self->on_message_(std::string_view(static_cast<const char*>(data.data()), data.size()));
      self->buffer_.consume(self->buffer_.size());
      self->read();
    });
  }

  void write() {
    auto self = std::static_pointer_cast<beast_client>(shared_from_this());
    if (queue_.empty()) {
      if (!closing_) return;
      writing_ = true;
      ws_.async_close(websocket::close_reason(static_cast<std::uint16_t>(close_code_)),
                      [self](beast::error_code) { self->writing_ = false; });
      return;
    }
    writing_ = true;
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    ws_.text(true);
    ws_.async_write(asio::buffer(*in_flight_), [self](beast::error_code ec, std::size_t) {
      self->queued_ -= self->in_flight_->size();
      self->in_flight_.reset();
      self->writing_ = false;
      if (ec) return self->fail(0, "write: " + ec.message());
      self->write();
    });
  }

  void fail(int code, const std::string& why) {
    if (closed_) return;
    closed_ = true;
    open_ = false;
    queue_.clear();
    queued_ = 0;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    if (on_close_) {
      auto cb = std::move(on_close_);
      cb(code, why);
    }
  }

  websocket::stream<beast::tcp_stream> ws_;
  endpoint_address where_;
  std::function<void()> on_open_;
  message_handler on_message_;
  close_handler on_close_;
  beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::shared_ptr<const std::string> in_flight_;
  std::size_t queued_ = 0;
  bool open_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
  int close_code_ = 1000;
};

}  // namespace

std::shared_ptr<ws_client> ws_client::create(asio::io_context& io) {
  return std::make_shared<beast_client>(io);
}

}  // namespace parley::client
