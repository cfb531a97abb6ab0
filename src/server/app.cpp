#include "server/app.hpp"

#include <signal.h>

#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <fstream>

#include "chat/service.hpp"
#include "net/server.hpp"
#include "net/shard_pool.hpp"
#include "proto/encode.hpp"
#include "server/asio_scheduler.hpp"
#include "server/http_api.hpp"
#include "server/media_http.hpp"
#include "server/media_setup.hpp"
#include "server/ws_session.hpp"
#include "store/rocksdb/rocksdb_store.hpp"
#include "util/crypto.hpp"
#include "util/log.hpp"

namespace parley::server {

namespace {

constexpr int kCloseRestarting = 1012;

void write_port_file(const std::string& path, std::uint16_t port) {
  // Written to a temporary name and renamed, so a reader never sees a partial file.
  auto tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out) throw std::runtime_error("cannot write port file " + path);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

int run(const config& cfg) {
  util::set_log_level(cfg.log_level);
  util::init_crypto();

  // Block the stop signals in every thread; the main thread waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::filesystem::create_directories(cfg.data_dir);
  store::rocksdb_store db(cfg.data_dir + "/db",
                          cfg.durability == durability_mode::sync ? store::durability::sync
                                                                  : store::durability::os,
                          chat::time_ms{cfg.dedup_retention_days} * 24 * 3600 * 1000);

  net::shard_pool shards(cfg.threads);
  asio_scheduler scheduler(shards);
  proto::wire_codec codec;
  chat::service::options service_opts;
  service_opts.login_max_failures = cfg.login_max_failures;
  service_opts.max_group_members = cfg.max_group_members;
  service_opts.chat_cache_members = cfg.chat_cache_members;
  service_opts.delivery.replay_high_water = std::min<std::size_t>(256 * 1024, cfg.outbound_max_bytes / 4);
  chat::service service(db, scheduler, codec, service_opts);

  session_options session_opts;
  session_opts.heartbeat_ms = cfg.heartbeat_ms;
  session_opts.auth_timeout_ms = cfg.auth_timeout_ms;
  session_opts.limits.text_max_bytes = cfg.text_max_bytes;
  session_opts.limits.title_max_chars = cfg.title_max_chars;
  session_opts.limits.users_get_max = cfg.users_get_max;
  session_opts.limits.presence_sub_max = cfg.presence_sub_max;
  session_opts.limits.group_members_max = cfg.max_group_members;
  session_opts.rate_burst = cfg.rate_burst;
  session_opts.rate_per_sec = cfg.rate_per_sec;
  session_opts.max_bad_frames = cfg.max_bad_frames;
  admission gate({cfg.max_unauthenticated_per_ip, cfg.max_connections_per_user,
                  cfg.allowed_origins});

  auto media_backend = open_blob_store(cfg);
  auto& blobs = media_backend.store;
  if (auto health = blobs->health(); !health)
    throw std::runtime_error("media store " + blobs->describe() + ": " + health.err().message);
  chat::media_library::options media_opts;
  media_opts.max_bytes = cfg.media_max_bytes;
  media_opts.url_secret = load_or_create_url_secret(cfg.data_dir);
  media_opts.direct_urls = cfg.media_direct_urls;
  chat::media_library media(db, *blobs, media_opts);
  session_opts.media = &media;

  // Password hashing and the HTTP handlers run here, off the event loops; media bytes (disk or
  // S3 I/O, mostly waiting) on a pool of their own, so slow storage never delays a login.
  boost::asio::thread_pool workers(std::max(2u, cfg.threads));
  boost::asio::thread_pool media_io(8);
  media_http media_routes(service, media);
  http_api api(service, media_routes, media_backend.direct_origin);

  net::server_options net_opts;
  net_opts.host = cfg.listen_host;
  net_opts.port = cfg.listen_port;
  net_opts.max_frame_bytes = cfg.max_frame_bytes;
  net_opts.outbound_max_bytes = cfg.outbound_max_bytes;
  net_opts.outbound_low_water = std::min<std::size_t>(64 * 1024, cfg.outbound_max_bytes / 8);
  net_opts.handshake_timeout = std::chrono::milliseconds(10'000);
  net_opts.idle_timeout = std::chrono::milliseconds(3 * cfg.heartbeat_ms);
  net_opts.write_timeout = std::chrono::milliseconds(std::max(10 * 1000, 3 * cfg.heartbeat_ms));
  net_opts.sweep_interval = std::chrono::milliseconds(std::clamp(cfg.heartbeat_ms / 4, 20, 1000));

  net::server listener(
      shards, workers, net_opts,
      [&api](const net::http_request& req, const std::string& remote) {
        return api.handle(req, remote);
      },
      [&service, &session_opts, &gate](std::shared_ptr<net::connection> conn,
                                       const net::http_request& upgrade) {
        auto session = std::make_shared<ws_session>(std::move(conn), service, session_opts, gate);
        auto header = [&](boost::beast::http::field f) {
          auto it = upgrade.find(f);
          return it == upgrade.end() ? std::string_view()
                                     : std::string_view(it->value().data(), it->value().size());
        };
        session->start(header(boost::beast::http::field::origin),
                       header(boost::beast::http::field::host));
        return session;
      });
  listener.set_upload_handler(media_routes.upload_handler());
  listener.set_stream_pool(media_io);
  listener.start();
  shards.start();
  util::log_info("parleyd serving on {}:{} with {} threads, data in {}, durability {}, media in {}",
                 cfg.listen_host, listener.port(), cfg.threads, cfg.data_dir,
                 cfg.durability == durability_mode::sync ? "sync" : "os", blobs->describe());
  if (!cfg.port_file.empty()) write_port_file(cfg.port_file, listener.port());

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  util::log_info("received signal {}: shutting down", signal_number);

  listener.stop(kCloseRestarting, std::chrono::milliseconds(3000));
  shards.stop();
  workers.join();
  media_io.join();
  if (auto flushed = db.flush(); !flushed)
    util::log_error("final flush failed: {}", flushed.err().message);
  util::log_info("stopped");
  return 0;
}

}  // namespace parley::server
