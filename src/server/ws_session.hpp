// ws_session — one WebSocket connection speaking the protocol: decodes each frame (proto),
// calls the domain (chat::service) and queues the encoded reply. It is also the connection's
// chat::endpoint, through which the domain pushes events.
//
// Lifecycle: created when the upgrade completes, with an `auth` deadline; authenticated by its
// first request (anything else, or a bad token, closes it with 4001); attached to the domain
// after a good `auth` (replay, then `synced`); detached when the connection ends.
// Malformed frames are answered `bad_request`; more than `max_bad_frames` of them within 10 s
// close the connection with 1008.
//
// Thread safety: runs on its connection's shard; domain callbacks may come from any shard and
// only queue frames (net::connection::send is thread-safe).
#pragma once

#include <memory>
#include <string>
#include <vector>
#include <string_view>

#include "chat/endpoint.hpp"
#include "chat/media_library.hpp"
#include "chat/service.hpp"
#include "net/connection.hpp"
#include "proto/limits.hpp"
#include "proto/request.hpp"
#include "server/admission.hpp"

namespace parley::server {

struct session_options {
  int heartbeat_ms = 5000;
  int auth_timeout_ms = 10000;
  unsigned max_bad_frames = 50;
  // Per-connection token bucket (PROTOCOL §7): every frame takes a token; rate 0 disables.
  double rate_burst = 100;
  double rate_per_sec = 20;
  proto::limits limits;
  chat::media_library* media = nullptr;  // for media.url
};

class ws_session final : public net::connection_handler,
                         public chat::endpoint,
                         public std::enable_shared_from_this<ws_session> {
 public:
  ws_session(std::shared_ptr<net::connection> conn, chat::service& service,
             const session_options& opts, admission& gate);

  // Admits the connection (Origin, the per-address cap of unauthenticated connections; 1008
  // when refused) and arms the auth deadline. Call once, right after construction.
  void start(std::string_view origin, std::string_view host);

  // net::connection_handler
  void on_text(std::string_view frame) override;
  void on_closed() override;

  // chat::endpoint
  std::size_t shard() const override { return conn_->shard(); }
  const chat::session_info& who() const override { return who_; }
  void push(chat::frame_ptr frame) override { conn_->send(std::move(frame)); }
  std::size_t queued_bytes() const override { return conn_->queued_bytes(); }
  void when_drained(std::function<void()> fn) override { conn_->when_drained(std::move(fn)); }
  void close(int code) override { conn_->close(code); }

 private:
  void handle_unauthenticated(proto::request& req);
  void handle(proto::request& req);
  void reply(std::string frame);
  void reply_error(const std::string& id_json, const chat::error& err);
  void note_bad_frame();
  // Takes a token from the bucket; false (with the wait in ms) when there is none.
  bool take_token(long& retry_ms);
  // A callback for the domain that answers request `id_json` with `encode(result)`.
  template <class T, class Encode>
  chat::reply_fn<T> answer(std::string id_json, Encode encode);

  std::shared_ptr<net::connection> conn_;
  chat::service& service_;
  const session_options& opts_;
  admission& gate_;
  chat::session_info who_;
  std::int64_t bad_window_start_ = 0;
  double tokens_;
  std::int64_t tokens_at_ms_;
  // The presence.sub list; allocated by the first presence.sub (most connections never send
  // one, and every idle connection's bytes count: docs/benchmarks.md).
  std::unique_ptr<std::vector<std::string>> watched_;
  unsigned bad_in_window_ = 0;
  // Bits, not bools: with them the object fits a smaller allocation class (per connection).
  bool refused_ : 1 = false;  // closed at admission: every frame is ignored
  bool counted_unauthenticated_ : 1 = false;
  bool counted_user_ : 1 = false;
  bool authenticated_ : 1 = false;
  bool attached_ : 1 = false;
};

}  // namespace parley::server
