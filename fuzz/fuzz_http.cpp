// fuzz_http — libFuzzer target for the HTTP side: arbitrary bytes go through Beast's HTTP/1.1
// request parser (http::request_parser<http::string_body>, body limit 1 MiB, as net::server
// configures it), and every request that parses is dispatched, as net::server would, to the
// real routes (server::http_api::handle) over a real chat::service on the in-memory store.
// Pipelined requests in one input are parsed and answered one after the other.
//
// The world persists across inputs (as a server does): one user `alice` and a few devices
// whose bearer tokens are known (`fuzz-token-0` .. `fuzz-token-3`, see corpus/http), so that
// DELETE /v1/sessions/current reaches its success path; a device logged out by an input is
// re-created before the next one, which keeps inputs independent of each other.
// The scheduler is chat::testing::manual_scheduler with one shard: what the service posts
// (the 4001 closes of a logout) is queued and drained after each input.
//
// Password hashing. POST /v1/users and POST /v1/sessions with a *valid* body hash a password
// with argon2id (~50 ms each, on purpose; an unknown username costs the same hash). That would
// slow fuzzing to ~20 executions per second, so only the first kHashingBudget such requests
// are dispatched; later ones are skipped (their bodies are pre-checked with
// proto::decode_register / proto::decode_login, exactly the validation the route runs first).
// Invalid bodies, which fail before any hashing, are always dispatched. Nothing is weakened in
// the code under test.
//
// Properties checked besides "no crash, no leak, no undefined behaviour": the response
// serialises; a response that says application/json has a JSON object body, and an error
// status (4xx/5xx) has the body {"error":{"code","message"}} with a protocol error code.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "chat/service.hpp"
#include "chat/testing/manual_scheduler.hpp"
#include "proto/encode.hpp"
#include "proto/http_body.hpp"
#include "blob/fs/fs_blob_store.hpp"
#include "chat/media_library.hpp"
#include "server/http_api.hpp"
#include "server/media_http.hpp"
#include "store/memory/memory_store.hpp"
#include "util/crypto.hpp"
#include "util/log.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace chat = parley::chat;
namespace proto = parley::proto;

constexpr std::size_t kBodyLimit = 1024 * 1024;  // net::server_options::http_body_max
constexpr int kHashingBudget = 8;                // argon2id calls let through per process
constexpr int kMaxPipelined = 8;                 // requests parsed from one input
constexpr int kKnownTokens = 4;

[[noreturn]] void fail(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz_http: property violated: %.*s\n  %.*s\n",
               static_cast<int>(what.size()), what.data(),
               static_cast<int>(std::min<std::size_t>(detail.size(), 2000)), detail.data());
  std::abort();
}

std::string token_hash(std::string_view token) {
  auto d = parley::util::sha256(token);
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

struct world {
  parley::store::memory_store db;
  chat::testing::manual_scheduler sched{1};
  proto::wire_codec codec;
  // Writes on the calling thread: the manual scheduler takes no posts from other threads.
  chat::service service{db, sched, codec, [] {
    chat::service::options o;
    o.writer_threads = false;
    return o;
  }()};
  // Media downloads (GET /v1/media/{id}) go through the real fs store in a temp dir. One PNG of
  // alice's is seeded; its id is random, so inputs name it `/v1/media/seeded` and the target is
  // rewritten before dispatch (see corpus/http/media_*.http).
  std::filesystem::path media_dir = std::filesystem::temp_directory_path() /
                                    ("parley-fuzz-media-" + std::to_string(::getpid()));
  parley::blob::fs_blob_store blobs{media_dir};
  chat::media_library media{db, blobs, {.max_bytes = 1 << 20, .url_secret = std::string(64, 'f')}};
  parley::server::media_http media_routes{service, media};
  parley::server::http_api api{service, media_routes};
  std::string seeded_media;
  int hashing_left = kHashingBudget;
  std::string alice_id = "ualicealicealicealicealicea";

  world() {
    chat::user_record alice;
    alice.id = alice_id;
    alice.username = "alice";
    alice.display_name = "Alice";
    alice.password_hash = parley::util::hash_password("correct horse battery");
    if (!db.create_user(alice)) fail("cannot seed alice");
    restore_sessions();
    auto upload = media.begin_upload(alice_id, "image/png", std::nullopt);
    if (!upload || !(*upload)->append(std::string("\x89PNG\r\n\x1a\n", 8) + std::string(3000, 'p')))
      fail("cannot seed a media");
    auto seeded = (*upload)->finish();
    if (!seeded) fail("cannot seed a media", seeded.err().message);
    seeded_media = seeded->id;
  }

  // Re-creates every known device that an input logged out.
  void restore_sessions() {
    for (int i = 0; i < kKnownTokens; ++i) {
      auto token = "fuzz-token-" + std::to_string(i);
      auto hash = token_hash(token);
      auto found = db.find_session(hash);
      if (found && found->has_value()) continue;
      chat::session_record s;
      s.token_hash = hash;
      s.user_id = alice_id;
      s.device_id = "vfuzzdevice" + std::to_string(i);
      s.device_name = "fuzz";
      if (!db.create_session(s, {})) fail("cannot seed a session");
    }
  }

  // Whether the route would hash a password for this request (see the file comment).
  static bool hashes(const parley::net::http_request& req) {
    if (req.method() != http::verb::post) return false;
    auto target = std::string_view(req.target().data(), req.target().size());
    auto path = target.substr(0, target.find('?'));
    if (path == "/v1/users") return proto::decode_register(req.body()).index() == 0;
    if (path == "/v1/sessions") return proto::decode_login(req.body()).index() == 0;
    return false;
  }
};

world* the_world = nullptr;

bool known_code(std::string_view code) {
  for (auto c : {"bad_request", "unauthenticated", "forbidden", "not_found", "conflict",
                 "too_large", "rate_limited", "unavailable", "internal"})
    if (code == c) return true;
  return false;
}

void check_response(parley::net::http_response& res, bool head) {
  res.prepare_payload();
  std::ostringstream wire;
  wire << res;  // the serializer the server writes with
  if (wire.str().empty()) fail("empty serialised response");

  auto type = res[http::field::content_type];
  if (head || type != "application/json") return;
  boost::system::error_code ec;
  auto body = json::parse(res.body(), ec);
  if (ec || !body.is_object())
    fail("application/json response whose body is no JSON object", res.body());
  if (res.result_int() < 400) return;
  auto* err = body.get_object().if_contains("error");
  if (!err || !err->is_object()) fail("error response without an error object", res.body());
  auto* code = err->get_object().if_contains("code");
  auto* message = err->get_object().if_contains("message");
  if (!code || !code->is_string() || !known_code(code->get_string()) || !message ||
      !message->is_string())
    fail("error body without a known code and a message", res.body());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  parley::util::init_crypto();
  parley::util::set_log_level(parley::util::log_level::error);
  the_world = new world();  // lives for the whole process
  std::atexit([] {
    std::error_code ignored;
    std::filesystem::remove_all(the_world->media_dir, ignored);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& w = *the_world;
  asio::const_buffer input(data, size);
  for (int n = 0; n < kMaxPipelined && input.size() > 0; ++n) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    parser.eager(true);
    beast::error_code ec;
    while (input.size() > 0 && !parser.is_done()) {
      auto used = parser.put(input, ec);
      input += used;
      if (ec == http::error::need_more) {
        ec = {};
        if (used == 0) break;  // the rest of the input is an incomplete piece
        continue;
      }
      if (ec || used == 0) break;
    }
    // The end of the input is the peer closing its side.
    if (!ec && !parser.is_done()) {
      input += input.size();
      parser.put_eof(ec);
    }
    if (ec || !parser.is_done()) break;  // the server answers 400/413 and hangs up

    auto req = parser.release();
    if (beast::websocket::is_upgrade(req)) {
      // net::server hands upgrades to the WebSocket side (or 404s them and hangs up): what
      // follows on the connection is no longer HTTP.
      break;
    }
    if (world::hashes(req)) {
      if (w.hashing_left <= 0) continue;  // skipped: see "Password hashing" above
      --w.hashing_left;
    }
    if (auto target = std::string(req.target()); target.starts_with("/v1/media/seeded"))
      req.target(target.replace(10, 6, w.seeded_media));
    auto reply = w.api.handle(req, "203.0.113.7");
    auto& res = reply.response;
    if (reply.body) {
      // What net writes after the head: exactly Content-Length bytes from the source.
      std::string streamed;
      char piece[4096];
      for (std::size_t n; (n = reply.body->read(piece, sizeof piece)) > 0;) streamed.append(piece, n);
      if (req.method() != http::verb::head &&
          std::to_string(streamed.size()) != std::string(res[http::field::content_length]))
        fail("streamed body differs from its Content-Length", streamed);
      if (req.method() != http::verb::head) res.body() = std::move(streamed);
    }
    res.keep_alive(req.keep_alive());
    check_response(res, req.method() == http::verb::head);
    w.sched.run_all();
    if (!req.keep_alive()) break;
  }
  w.restore_sessions();
  return 0;
}
