#include "net/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <array>
#include <cctype>
#include <atomic>
#include <boost/lexical_cast.hpp>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "net/ws_connection.hpp"
#include "util/log.hpp"

namespace parley::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
constexpr auto as_tuple_awaitable = asio::as_tuple(asio::use_awaitable);

std::int64_t steady_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

namespace {

constexpr std::size_t kStreamPiece = 64 * 1024;  // one read or write of a streamed HTTP body

// Logs what escaped a session coroutine (nothing should).
void log_escaped(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    util::log_error("session ended by an exception: {}", ex.what());
  }
}

http_response plain_response(http::status status, std::string body, unsigned version) {
  http_response res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

http_response malformed_request_response(unsigned version) {
  return plain_response(http::status::bad_request,
                        R"({"error":{"code":"bad_request","message":"malformed HTTP request"}})",
                        version);
}

http_response too_large_response(unsigned version) {
  return plain_response(http::status::payload_too_large,
                        R"({"error":{"code":"too_large","message":"body too large"}})", version);
}

bool valid_client_key(std::string_view key) {
  // 16 random bytes in base64: 24 characters, the last two "==".
  if (key.size() != 24 || !key.ends_with("==")) return false;
  for (char c : key.substr(0, 22)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/') return false;
  }
  return true;
}

http_response refuse_upgrade(http::status status, unsigned version, std::string_view message) {
  auto res = plain_response(
      status, R"({"error":{"code":"bad_request","message":")" + std::string(message) + "\"}}", version);
  res.set(http::field::server, "parley");
  return res;
}

// nullopt when `req`, which websocket::is_upgrade accepted (a GET over HTTP/1.1 with
// `Connection: upgrade` and `Upgrade: websocket`), is an acceptable WebSocket opening handshake
// (RFC 6455 §4.2.1); else the answer.
std::optional<http_response> check_upgrade(const http_request& req) {
  const unsigned version = req.version();
  auto ws_version = req[http::field::sec_websocket_version];
  if (ws_version != "13") {
    auto res = refuse_upgrade(http::status::upgrade_required, version, "WebSocket version 13 is required");
    res.set(http::field::sec_websocket_version, "13");
    return res;
  }
  auto key = req[http::field::sec_websocket_key];
  if (!valid_client_key(std::string_view(key.data(), key.size())))
    return refuse_upgrade(http::status::bad_request, version, "bad Sec-WebSocket-Key");
  return std::nullopt;
}

}  // namespace

// What each shard holds besides its connections.
struct shard_runtime : shard_state {
  std::unique_ptr<asio::steady_timer> sweep_timer;
  std::unique_ptr<tcp::acceptor> acceptor;
};

struct server::impl {
  shard_pool& shards;
  asio::thread_pool& workers;
  server_options opts;
  http_handler on_http;
  ws_open_handler on_ws;
  upload_handler uploads;
  asio::thread_pool* stream_pool = nullptr;  // body_sink / body_source calls; null: workers
  std::vector<std::unique_ptr<shard_runtime>> states;
  std::atomic<std::uint16_t> bound_port{0};
  std::atomic<bool> stopping{false};

  impl(shard_pool& s, asio::thread_pool& w, server_options o, http_handler h, ws_open_handler ws)
      : shards(s), workers(w), opts(std::move(o)), on_http(std::move(h)), on_ws(std::move(ws)) {}

  void listen(std::size_t shard) {
    auto& ctx = shards.context(shard);
    auto& st = *states[shard];
    tcp::endpoint ep{asio::ip::make_address(opts.host), bound_port.load()};
    st.acceptor = std::make_unique<tcp::acceptor>(ctx);
    st.acceptor->open(ep.protocol());
    st.acceptor->set_option(asio::socket_base::reuse_address(true));
    int one = 1;
    if (::setsockopt(st.acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      throw std::runtime_error("SO_REUSEPORT failed");
    st.acceptor->bind(ep);
    st.acceptor->listen(asio::socket_base::max_listen_connections);
    bound_port = st.acceptor->local_endpoint().port();
  }

  awaitable<void> accept_loop(std::size_t shard) {
    auto& st = *states[shard];
    for (;;) {
      auto [ec, socket] = co_await st.acceptor->async_accept(as_tuple_awaitable);
      if (ec) {
        if (ec == asio::error::operation_aborted || stopping) co_return;
        // EMFILE and friends: back off briefly instead of spinning.
        util::log_warn("accept failed: {}", ec.message());
        asio::steady_timer pause(shards.context(shard), std::chrono::milliseconds(50));
        co_await pause.async_wait(as_tuple_awaitable);
        continue;
      }
      socket.set_option(tcp::no_delay(true));
      asio::co_spawn(shards.context(shard), session(shard, std::move(socket)), log_escaped);
    }
  }

  // Runs `fn` on `pool` and resumes with its result (or its exception).
  template <class Fn>
  static auto on_pool(asio::thread_pool& pool, Fn fn) -> awaitable<decltype(fn())> {
    using R = decltype(fn());
    co_return co_await asio::co_spawn(
        pool, [&fn]() -> awaitable<R> { co_return fn(); }, use_awaitable);
  }
  template <class Fn>
  auto on_workers(Fn fn) -> awaitable<decltype(fn())> {
    return on_pool(workers, std::move(fn));
  }
  template <class Fn>
  auto on_stream_pool(Fn fn) -> awaitable<decltype(fn())> {
    return on_pool(stream_pool ? *stream_pool : workers, std::move(fn));
  }

  // Answers `res` and ends the connection without reading the rest of the request: the send
  // side is shut down, then what the peer still sends is read and dropped for a short while,
  // so that closing with unread input does not reset the connection before the peer has read
  // the answer (RFC 9112 §9.6).
  awaitable<void> answer_and_linger(beast::tcp_stream& stream, http_response res) {
    res.keep_alive(false);
    res.prepare_payload();
    stream.expires_after(opts.handshake_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, as_tuple_awaitable);
    if (wec) co_return;
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    std::array<char, 16 * 1024> sink{};
    std::size_t drained = 0;
    stream.expires_after(std::chrono::milliseconds(2000));
    while (drained < 8 * 1024 * 1024) {
      auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), as_tuple_awaitable);
      if (rec) break;
      drained += n;
    }
  }

  // Writes a reply: its head and body at once, or its head and then its body_source piece by
  // piece (each read on the worker pool). False when the connection must end.
  awaitable<bool> write_reply(beast::tcp_stream& stream, http_reply& reply, bool head_only) {
    auto& res = reply.response;
    if (!reply.body) {
      res.prepare_payload();
      // A 304 describes the stored representation: a Content-Length of 0 would misstate it
      // (RFC 9110 §8.6), and a 204 has none.
      if (res.result() == http::status::not_modified || res.result() == http::status::no_content)
        res.erase(http::field::content_length);
      if (head_only) {
        // A HEAD answer has the headers of the GET answer and no body (RFC 9110 §9.3.2): a
        // body would be read by a keep-alive client as the start of the next response.
        auto length = res[http::field::content_length];
        std::string kept(length.data(), length.size());
        res.body().clear();
        res.set(http::field::content_length, kept);
      }
      stream.expires_after(opts.handshake_timeout);
      auto [wec, wn] = co_await http::async_write(stream, res, as_tuple_awaitable);
      co_return !wec;
    }
    res.body().clear();  // the source is the body; Content-Length was set by the handler
    http::response_serializer<http::string_body> head_writer(res);
    stream.expires_after(opts.handshake_timeout);
    auto [hec, hn] = co_await http::async_write_header(stream, head_writer, as_tuple_awaitable);
    if (hec) co_return false;
    if (head_only) co_return true;
    std::uint64_t remaining = res.has_content_length()
                                  ? boost::lexical_cast<std::uint64_t>(res[http::field::content_length])
                                  : 0;
    auto piece = std::make_unique<char[]>(kStreamPiece);
    while (remaining > 0) {
      std::size_t n = 0;
      try {
        n = co_await on_stream_pool([&] { return reply.body->read(piece.get(), kStreamPiece); });
      } catch (const std::exception& e) {
        util::log_warn("reply body failed after its head was sent: {}", e.what());
        co_return false;
      }
      // A source that ends early or runs long would break the framing of the response.
      if (n == 0 || n > remaining) co_return false;
      remaining -= n;
      stream.expires_after(opts.stream_idle_timeout);
      auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(piece.get(), n),
                                                  as_tuple_awaitable);
      if (wec) co_return false;
    }
    co_return true;
  }

  // Streams the body of the request whose head `head_parser` holds into `sink`. Returns the
  // response to send, or nothing when the connection must end (the body did not arrive).
  // `early` tells that the response came before the whole body was read.
  awaitable<std::optional<http_response>> stream_body(beast::tcp_stream& stream,
                                                      beast::flat_buffer& buffer,
                                                      http::request_parser<http::empty_body>& head_parser,
                                                      std::unique_ptr<body_sink>& sink, bool& early) {
    auto& head = head_parser.get();
    if (auto expect = head[http::field::expect]; beast::iequals(expect, "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      stream.expires_after(opts.handshake_timeout);
      auto [cec, cn] = co_await asio::async_write(stream, asio::buffer(kContinue.data(), kContinue.size()),
                                                  as_tuple_awaitable);
      if (cec) co_return std::nullopt;
    }
    http::request_parser<http::buffer_body> body_parser(std::move(head_parser));
    body_parser.body_limit(boost::none);  // the sink enforces its own limit on what it takes
    auto piece = std::make_unique<char[]>(kStreamPiece);
    const auto deadline = std::chrono::steady_clock::now() + opts.stream_max_duration;
    while (!body_parser.is_done()) {
      body_parser.get().body().data = piece.get();
      body_parser.get().body().size = kStreamPiece;
      // Each read that makes progress earns another idle period, up to the overall deadline.
      auto idle_until = std::chrono::steady_clock::now() + opts.stream_idle_timeout;
      stream.expires_at(std::min(idle_until, deadline));
      auto [ec, n] = co_await http::async_read_some(stream, buffer, body_parser, as_tuple_awaitable);
      if (ec && ec != http::error::need_buffer) co_return std::nullopt;
      std::size_t got = kStreamPiece - body_parser.get().body().size;
      if (got == 0) continue;
      auto early_reply = co_await on_stream_pool(
          [&] { return sink->write(std::string_view(piece.get(), got)); });
      if (early_reply) {
        early = !body_parser.is_done();
        co_return early_reply;
      }
    }
    co_return co_await on_stream_pool([&] { return sink->finish(); });
  }

  awaitable<void> session(std::size_t shard, tcp::socket socket) {
    beast::error_code addr_ec;
    auto peer = socket.remote_endpoint(addr_ec);
    std::string remote = addr_ec ? std::string("?") : peer.address().to_string();
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      // The head first: it decides where the body goes (memory, a body_sink, nowhere).
      http::request_parser<http::empty_body> head_parser;
      head_parser.header_limit(8 * 1024);
      head_parser.body_limit(boost::none);  // checked below, per destination
      stream.expires_after(opts.handshake_timeout);
      auto [ec, n] = co_await http::async_read_header(stream, buffer, head_parser, as_tuple_awaitable);
      if (ec) {
        if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
            ec != asio::error::operation_aborted && ec != asio::error::connection_reset) {
          // A malformed request: answer 400 and hang up.
          co_await answer_and_linger(stream, malformed_request_response(11));
        }
        break;
      }
      const auto& head = head_parser.get();
      const unsigned version = head.version();

      if (uploads.wants && !websocket::is_upgrade(head) && uploads.wants(head)) {
        stream.expires_never();
        auto decision = co_await on_workers([&] { return uploads.decide(head, remote); });
        if (auto* refused = std::get_if<http_response>(&decision)) {
          co_await answer_and_linger(stream, std::move(*refused));
          break;
        }
        if (auto* sink = std::get_if<std::unique_ptr<body_sink>>(&decision)) {
          // Read before stream_body takes the head over.
          const bool wants_keep_alive = head.keep_alive();
          bool early = false;
          auto res = co_await stream_body(stream, buffer, head_parser, *sink, early);
          // Before answering: an unfinished sink discards its upload now, which may block
          // (an S3 multipart upload is aborted): on the workers, never on the shard.
          co_await on_stream_pool([&] {
            sink->reset();
            return true;
          });
          if (!res) break;
          if (early) {
            co_await answer_and_linger(stream, std::move(*res));
            break;
          }
          http_reply reply(std::move(*res));
          bool keep_alive = wants_keep_alive && !stopping;
          reply.response.keep_alive(keep_alive);
          if (!co_await write_reply(stream, reply, false) || !keep_alive) break;
          continue;
        }
        // std::monostate: read into memory like any other request.
      }

      // Bodies read into memory are bounded by http_body_max, on the declared length first.
      if (auto length = head_parser.content_length(); length && *length > opts.http_body_max) {
        co_await answer_and_linger(stream, too_large_response(version));
        break;
      }
      http::request_parser<http::string_body> parser(std::move(head_parser));
      parser.body_limit(opts.http_body_max);
      stream.expires_after(opts.handshake_timeout);
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, as_tuple_awaitable);
      if (bec == http::error::body_limit) {
        co_await answer_and_linger(stream, too_large_response(version));
        break;
      }
      if (bec) {
        if (bec != http::error::end_of_stream && bec != beast::error::timeout &&
            bec != asio::error::operation_aborted && bec != asio::error::connection_reset) {
          co_await answer_and_linger(stream, malformed_request_response(version));
        }
        break;
      }
      http_request req = parser.release();
      if (websocket::is_upgrade(req)) {
        auto target = req.target();
        auto path = target.substr(0, target.find('?'));
        if (path != opts.ws_path || stopping) {
          auto res = plain_response(http::status::not_found,
                                    R"({"error":{"code":"not_found","message":"no WebSocket here"}})",
                                    req.version());
          res.keep_alive(false);
          co_await http::async_write(stream, res, as_tuple_awaitable);
          break;
        }
        if (auto refused = check_upgrade(req)) {
          co_await answer_and_linger(stream, std::move(*refused));
          break;
        }
        stream.expires_never();
        // Bytes the client sent after its upgrade request are its first frames.
        auto early = buffer.cdata();
        std::string early_bytes(static_cast<const char*>(early.data()), early.size());
        auto conn = std::make_shared<ws_connection>(shard, stream.release_socket(), remote, opts,
                                                    *states[shard]);
        // This coroutine ends now, so its HTTP parser and buffers are not held for the life of
        // the WebSocket; the shard's registry owns the connection until it finishes.
        conn->start(req, std::move(early_bytes), on_ws);
        co_return;
      }
      stream.expires_never();
      // Handlers may block (password hashing, store reads): run them on the worker pool.
      http_reply reply = co_await on_workers([&] { return on_http(req, remote); });
      bool keep_alive = req.keep_alive() && !stopping;
      reply.response.keep_alive(keep_alive);
      if (!co_await write_reply(stream, reply, req.method() == http::verb::head) || !keep_alive)
        break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  void start_sweep(std::size_t shard) {
    auto& st = *states[shard];
    st.sweep_timer->expires_after(opts.sweep_interval);
    st.sweep_timer->async_wait([this, shard](beast::error_code ec) {
      if (ec) return;
      auto& s = *states[shard];
      auto now = steady_now_ms();
      // Copy first: a close may end a connection and erase it from the set.
      std::vector<std::shared_ptr<ws_connection>> all;
      all.reserve(s.connections.size());
      for (auto& [key, c] : s.connections) all.push_back(c);
      for (auto& c : all) c->sweep(now);
      start_sweep(shard);
    });
  }
};

server::server(shard_pool& shards, asio::thread_pool& workers, server_options opts,
               http_handler on_http, ws_open_handler on_ws)
    : impl_(std::make_unique<impl>(shards, workers, std::move(opts), std::move(on_http),
                                   std::move(on_ws))) {}

server::~server() = default;

void server::start() {
  auto& m = *impl_;
  m.bound_port = m.opts.port;
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    m.states.push_back(std::make_unique<shard_runtime>());
    m.states[i]->sweep_timer = std::make_unique<asio::steady_timer>(m.shards.context(i));
    m.states[i]->poller = std::make_unique<shard_poller>(
        m.shards.context(i),
        [](void* owner, std::uint32_t events) { static_cast<ws_connection*>(owner)->on_ready(events); });
  }
  try {
    for (std::size_t i = 0; i < m.shards.size(); ++i) m.listen(i);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen on " + m.opts.host + ":" +
                             std::to_string(m.opts.port) + ": " + e.what());
  }
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    asio::co_spawn(m.shards.context(i), m.accept_loop(i), log_escaped);
    asio::post(m.shards.context(i), [&m, i] { m.start_sweep(i); });
  }
}

void server::set_upload_handler(upload_handler handler) { impl_->uploads = std::move(handler); }

void server::set_stream_pool(asio::thread_pool& pool) { impl_->stream_pool = &pool; }

std::uint16_t server::port() const { return impl_->bound_port.load(); }

std::size_t server::connection_count() const {
  std::atomic<std::size_t> total{0};
  std::atomic<std::size_t> pending{impl_->shards.size()};
  for (std::size_t i = 0; i < impl_->shards.size(); ++i) {
    asio::post(impl_->shards.context(i), [&, i] {
      total += impl_->states[i]->connections.size();
      --pending;
    });
  }
  while (pending.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return total.load();
}

void server::stop(int close_code, std::chrono::milliseconds grace) {
  auto& m = *impl_;
  m.stopping = true;
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    asio::post(m.shards.context(i), [&m, i, close_code] {
      auto& st = *m.states[i];
      beast::error_code ignored;
      if (st.acceptor) st.acceptor->close(ignored);
      std::vector<std::shared_ptr<ws_connection>> all;
      for (auto& [key, c] : st.connections) all.push_back(c);
      for (auto& c : all) c->close(close_code);
    });
  }
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (connection_count() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    asio::post(m.shards.context(i), [&m, i] {
      m.states[i]->sweep_timer->cancel();
      // Whatever did not finish its closing handshake in time is cut now.
      std::vector<std::shared_ptr<ws_connection>> all;
      for (auto& [key, c] : m.states[i]->connections) all.push_back(c);
      for (auto& c : all) c->abort();
    });
  }
}

}  // namespace parley::net
