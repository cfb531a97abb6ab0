#include "server/ws_session.hpp"

#include <cmath>

#include "proto/encode.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"

namespace parley::server {

namespace {
constexpr int kCloseAuthFailed = 4001;
constexpr int kClosePolicy = 1008;
constexpr std::int64_t kBadFrameWindowMs = 10'000;

chat::frame_ptr make_frame(std::string s) { return std::make_shared<const std::string>(std::move(s)); }
}  // namespace

ws_session::ws_session(std::shared_ptr<net::connection> conn, chat::service& service,
                       const session_options& opts, admission& gate)
    : conn_(std::move(conn)),
      service_(service),
      opts_(opts),
      gate_(gate),
      tokens_(opts.rate_burst),
      tokens_at_ms_(net::steady_now_ms()) {}

bool ws_session::take_token(long& retry_ms) {
  if (opts_.rate_per_sec <= 0) return true;
  auto now = net::steady_now_ms();
  tokens_ = std::min(opts_.rate_burst, tokens_ + (now - tokens_at_ms_) * opts_.rate_per_sec / 1000.0);
  tokens_at_ms_ = now;
  if (tokens_ >= 1) {
    tokens_ -= 1;
    return true;
  }
  retry_ms = static_cast<long>(std::ceil((1 - tokens_) * 1000.0 / opts_.rate_per_sec));
  return false;
}

void ws_session::start(std::string_view origin, std::string_view host) {
  if (!gate_.origin_allowed(origin, host)) {
    util::log_info("refusing a WebSocket from {}: origin '{}' not allowed", conn_->remote_address(),
                   origin);
    refused_ = true;
    conn_->close(kClosePolicy);
    return;
  }
  if (!gate_.try_open_unauthenticated(conn_->remote_address())) {
    util::log_info("refusing a WebSocket from {}: too many unauthenticated connections",
                   conn_->remote_address());
    refused_ = true;
    conn_->close(kClosePolicy);
    return;
  }
  counted_unauthenticated_ = true;
  conn_->set_deadline(net::steady_now_ms() + opts_.auth_timeout_ms, kCloseAuthFailed);
}

void ws_session::reply(std::string frame) { conn_->send(make_frame(std::move(frame))); }

void ws_session::reply_error(const std::string& id_json, const chat::error& err) {
  reply(proto::error_reply(id_json, err));
}

void ws_session::note_bad_frame() {
  auto now = net::steady_now_ms();
  if (now - bad_window_start_ >= kBadFrameWindowMs) {
    bad_window_start_ = now;
    bad_in_window_ = 0;
  }
  if (++bad_in_window_ > opts_.max_bad_frames) {
    util::log_info("closing {}: too many malformed frames", conn_->remote_address());
    conn_->close(kClosePolicy);
  }
}

template <class T, class Encode>
chat::reply_fn<T> ws_session::answer(std::string id_json, Encode encode) {
  return [conn = conn_, id = std::move(id_json), encode](chat::result<T> r) {
    if (!r) {
      conn->send(make_frame(proto::error_reply(id, r.err())));
    } else if (!id.empty()) {
      conn->send(make_frame(encode(id, *r)));
    }
  };
}

void ws_session::on_text(std::string_view frame) {
  if (refused_) return;
  auto decoded = proto::decode_request(frame, opts_.limits);
  if (long retry_ms = 0; !take_token(retry_ms)) {
    // Does nothing but answer, with the id when it could be read.
    auto* req = std::get_if<proto::request>(&decoded);
    auto* bad = std::get_if<proto::decode_error>(&decoded);
    chat::error limited = chat::make_error(chat::errc::rate_limited, "too many frames; slow down");
    limited.retry_ms = retry_ms;
    reply_error(req ? req->id_json : bad->id_json, limited);
    return;
  }
  if (auto* bad = std::get_if<proto::decode_error>(&decoded)) {
    if (!authenticated_) {
      // Nothing but a well-formed auth is accepted first.
      if (!bad->id_json.empty())
        reply_error(bad->id_json,
                    chat::make_error(chat::errc::unauthenticated,
                                     "the first request must be a valid auth: " + bad->err.message));
      conn_->close(kCloseAuthFailed);
      return;
    }
    reply_error(bad->id_json, bad->err);
    note_bad_frame();
    return;
  }
  auto& req = std::get<proto::request>(decoded);
  if (!authenticated_) return handle_unauthenticated(req);
  handle(req);
}

void ws_session::handle_unauthenticated(proto::request& req) {
  auto* auth = std::get_if<proto::auth_args>(&req.args);
  if (!auth) {
    if (!req.id_json.empty())
      reply_error(req.id_json, chat::make_error(chat::errc::unauthenticated,
                                                "the first request must be auth"));
    conn_->close(kCloseAuthFailed);
    return;
  }
  auto who = service_.authenticate(auth->token);
  if (!who) {
    if (!req.id_json.empty()) reply_error(req.id_json, who.err());
    // A store failure is not the client's fault: let it retry later.
    conn_->close(who.err().code == chat::errc::unauthenticated ? kCloseAuthFailed : 1013);
    return;
  }
  if (!gate_.try_open_user(who->user_id)) {
    if (!req.id_json.empty())
      reply_error(req.id_json, chat::make_error(chat::errc::forbidden,
                                                "too many live connections for this user"));
    refused_ = true;
    conn_->close(kClosePolicy);
    return;
  }
  counted_user_ = true;
  gate_.close_unauthenticated(conn_->remote_address());
  counted_unauthenticated_ = false;
  authenticated_ = true;
  who_ = *who;
  conn_->set_deadline(0, 0);
  if (!req.id_json.empty())
    reply(proto::auth_reply(req.id_json, who_, opts_.heartbeat_ms, util::now_ms()));
  attached_ = true;
  service_.attach(shared_from_this());
}

void ws_session::handle(proto::request& req) {
  using namespace proto;
  const auto& id = req.id_json;
  auto empty_ok = [](const std::string& i, const chat::done&) { return empty_ok_reply(i); };
  std::visit(
      [&](auto& args) {
        using A = std::decay_t<decltype(args)>;
        if constexpr (std::is_same_v<A, auth_args>) {
          reply_error(id, chat::make_error(chat::errc::bad_request, "already authenticated"));
        } else if constexpr (std::is_same_v<A, ping_args>) {
          if (!id.empty()) reply(ping_reply(id, util::now_ms()));
        } else if constexpr (std::is_same_v<A, users_get_args>) {
          auto users = args.by_id ? service_.users_by_id(args.values)
                                  : service_.users_by_name(args.values);
          answer<std::vector<chat::user_public>>(id, users_reply)(std::move(users));
        } else if constexpr (std::is_same_v<A, chat_open_args>) {
          service_.open_direct(who_, args.peer, answer<chat::chat_record>(id, chat_reply));
        } else if constexpr (std::is_same_v<A, chats_args>) {
          answer<std::vector<chat::chat_state>>(id, chats_reply)(service_.chats(who_));
        } else if constexpr (std::is_same_v<A, chat::send_request>) {
          service_.send(who_, std::move(args), answer<chat::send_result>(id, send_reply));
        } else if constexpr (std::is_same_v<A, chat::history_request>) {
          answer<chat::history_result>(id, history_reply)(service_.history(who_, args));
        } else if constexpr (std::is_same_v<A, ack_args>) {
          service_.ack(who_, std::move(args.chat), args.seq, answer<chat::done>(id, empty_ok));
        } else if constexpr (std::is_same_v<A, read_args>) {
          service_.read(who_, std::move(args.chat), args.seq, answer<chat::done>(id, empty_ok));
        } else if constexpr (std::is_same_v<A, receipts_args>) {
          service_.receipts(who_, std::move(args.chat), args.seq,
                            answer<chat::receipts_result>(id, receipts_reply));
        } else if constexpr (std::is_same_v<A, typing_args>) {
          service_.typing(who_, std::move(args.chat), args.on, answer<chat::done>(id, empty_ok));
        } else if constexpr (std::is_same_v<A, chat::group_create_request>) {
          service_.create_group(who_, std::move(args), answer<chat::chat_record>(id, chat_reply));
        } else if constexpr (std::is_same_v<A, group_add_args>) {
          service_.add_members(who_, std::move(args.chat), std::move(args.users),
                               answer<chat::chat_record>(id, chat_reply));
        } else if constexpr (std::is_same_v<A, group_remove_args>) {
          service_.remove_members(who_, std::move(args.chat), std::move(args.users),
                                  answer<chat::chat_record>(id, chat_reply));
        } else if constexpr (std::is_same_v<A, group_leave_args>) {
          service_.leave(who_, std::move(args.chat), answer<chat::done>(id, empty_ok));
        } else if constexpr (std::is_same_v<A, chat::group_update_request>) {
          service_.update_group(who_, std::move(args), answer<chat::chat_record>(id, chat_reply));
        } else if constexpr (std::is_same_v<A, media_url_args>) {
          // Store reads on this thread, as history does; a pre-signed URL is computed, not fetched.
          auto url = opts_.media->url_for(who_.user_id, args.media_id);
          if (!url) return reply_error(id, url.err());
          if (!id.empty()) reply(media_url_reply(id, url->url, url->expires));
        } else if constexpr (std::is_same_v<A, presence_sub_args>) {
          if (!watched_) watched_ = std::make_unique<std::vector<std::string>>();
          auto previous = *watched_;
          service_.presence_watch(shared_from_this(), who_, previous, args.users, *watched_,
                                  answer<chat::presence_result>(id, presence_reply));
        }
      },
      req.args);
}

void ws_session::on_closed() {
  static const std::vector<std::string> none;
  if (attached_) service_.detach(shared_from_this(), watched_ ? *watched_ : none);
  attached_ = false;
  if (counted_unauthenticated_) gate_.close_unauthenticated(conn_->remote_address());
  if (counted_user_) gate_.close_user(who_.user_id);
  counted_unauthenticated_ = counted_user_ = false;
}

}  // namespace parley::server
