#include "server/config.hpp"

#include <charconv>
#include <fstream>
#include <map>
#include <stdexcept>
#include <thread>

namespace parley::server {

namespace {

struct bad_option : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class Int>
Int parse_int(const std::string& key, const std::string& value, Int min, Int max) {
  long long v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc{} || end != value.data() + value.size() || v < static_cast<long long>(min) ||
      v > static_cast<long long>(max))
    throw bad_option("--" + key + " wants an integer from " + std::to_string(min) + " to " +
                     std::to_string(max) + ", not '" + value + "'");
  return static_cast<Int>(v);
}

void apply(config& c, const std::string& key, const std::string& value) {
  if (key == "listen") {
    auto colon = value.rfind(':');
    if (colon == std::string::npos || colon == 0)
      throw bad_option("--listen wants HOST:PORT, not '" + value + "'");
    c.listen_host = value.substr(0, colon);
    if (c.listen_host.size() > 2 && c.listen_host.front() == '[' && c.listen_host.back() == ']')
      c.listen_host = c.listen_host.substr(1, c.listen_host.size() - 2);
    c.listen_port = parse_int<std::uint16_t>(key, value.substr(colon + 1), 0, 65535);
  } else if (key == "data-dir") {
    if (value.empty()) throw bad_option("--data-dir must not be empty");
    c.data_dir = value;
  } else if (key == "durability") {
    if (value == "sync") {
      c.durability = durability_mode::sync;
    } else if (value == "os") {
      c.durability = durability_mode::os;
    } else {
      throw bad_option("--durability wants sync or os, not '" + value + "'");
    }
  } else if (key == "threads") {
    c.threads = parse_int<unsigned>(key, value, 1, 256);
  } else if (key == "log-level") {
    if (!util::parse_log_level(value, c.log_level))
      throw bad_option("--log-level wants debug, info, warn or error, not '" + value + "'");
  } else if (key == "port-file") {
    c.port_file = value;
  } else if (key == "heartbeat-ms") {
    c.heartbeat_ms = parse_int<int>(key, value, 50, 600000);
  } else if (key == "auth-timeout-ms") {
    c.auth_timeout_ms = parse_int<int>(key, value, 50, 600000);
  } else if (key == "max-frame-bytes") {
    c.max_frame_bytes = parse_int<std::size_t>(key, value, 1024, 64 << 20);
  } else if (key == "outbound-max-bytes") {
    c.outbound_max_bytes = parse_int<std::size_t>(key, value, 64 << 10, std::size_t{1} << 32);
  } else if (key == "title-max-chars") {
    c.title_max_chars = parse_int<std::size_t>(key, value, 1, 10000);
  } else if (key == "users-get-max") {
    c.users_get_max = parse_int<std::size_t>(key, value, 1, 100000);
  } else if (key == "presence-sub-max") {
    c.presence_sub_max = parse_int<std::size_t>(key, value, 1, 100000);
  } else if (key == "text-max-bytes") {
    c.text_max_bytes = parse_int<std::size_t>(key, value, 1, 16 << 20);
  } else if (key == "login-max-failures") {
    c.login_max_failures = parse_int<unsigned>(key, value, 1, 1000000);
  } else if (key == "rate-burst") {
    c.rate_burst = parse_int<unsigned>(key, value, 1, 1000000000);
  } else if (key == "rate-per-sec") {
    c.rate_per_sec = parse_int<unsigned>(key, value, 0, 1000000000);
  } else if (key == "max-bad-frames") {
    c.max_bad_frames = parse_int<unsigned>(key, value, 1, 1000000000);
  } else if (key == "max-unauth-per-ip") {
    c.max_unauthenticated_per_ip = parse_int<unsigned>(key, value, 0, 1000000000);
  } else if (key == "max-connections-per-user") {
    c.max_connections_per_user = parse_int<unsigned>(key, value, 0, 1000000000);
  } else if (key == "max-group-members") {
    c.max_group_members = parse_int<std::size_t>(key, value, 2, 100000);
  } else if (key == "chat-cache-members") {
    c.chat_cache_members = parse_int<std::size_t>(key, value, 2, std::size_t{1} << 40);
  } else if (key == "media") {
    if (value != "fs" && !(value.starts_with("fs:") && value.size() > 3) && !value.starts_with("s3://"))
      throw bad_option("--media wants fs, fs:DIR or s3://BUCKET?endpoint=...&region=..., not '" +
                       value + "'");
    c.media = value;
  } else if (key == "dedup-retention-days") {
    c.dedup_retention_days = parse_int<unsigned>(key, value, 0, 36500);
    if (c.dedup_retention_days != 0 && c.dedup_retention_days < 7)
      throw bad_option("--dedup-retention-days wants 0 (forever) or at least 7 (the protocol "
                       "promises a week), not " + value);
  } else if (key == "media-max-bytes") {
    c.media_max_bytes = parse_int<std::uint64_t>(key, value, 1, std::uint64_t{1} << 40);
  } else if (key == "media-direct-urls") {
    if (value != "true" && value != "false")
      throw bad_option("--media-direct-urls wants true or false, not '" + value + "'");
    c.media_direct_urls = value == "true";
  } else if (key == "allowed-origin") {
    if (value.empty() || value.find("://") == std::string::npos || value.back() == '/')
      throw bad_option("--allowed-origin wants an origin such as https://chat.example.com, not '" +
                       value + "'");
    c.allowed_origins.push_back(value);
  } else {
    throw bad_option("unknown option --" + key);
  }
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

void apply_file(config& c, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw bad_option("cannot read config file " + path);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line = trim(line);
    if (line.empty()) continue;
    auto eq = line.find('=');
    if (eq == std::string::npos)
      throw bad_option(path + ":" + std::to_string(number) + ": expected key = value");
    auto key = trim(line.substr(0, eq));
    if (key == "config") throw bad_option(path + ": a config file cannot include another");
    try {
      apply(c, key, trim(line.substr(eq + 1)));
    } catch (const bad_option& e) {
      throw bad_option(path + ":" + std::to_string(number) + ": " + e.what());
    }
  }
}

}  // namespace

std::string usage() {
  return R"(parleyd — the Parley chat server

Usage: parleyd [options]

  --listen HOST:PORT        address to serve HTTP and WebSocket on (default 0.0.0.0:8080;
                            port 0 picks a free port, see --port-file)
  --data-dir DIR            where the embedded store keeps its data (default ./parley-data)
  --durability sync|os      sync: fsync before every ack (default); os: hand writes to the OS
                            (survives a crash of parleyd, not of the machine)
  --threads N               event-loop threads (default: one per core)
  --config FILE             read options from FILE (key = value lines); flags override it
  --log-level LEVEL         debug, info, warn or error (default info)
  --port-file FILE          write the bound port to FILE once serving
  --heartbeat-ms N          heartbeat interval announced to clients (default 5000); a
                            connection silent for 3 intervals is closed
  --auth-timeout-ms N       time allowed for the first frame, auth (default 10000)
  --max-frame-bytes N       largest WebSocket message (default 65536)
  --outbound-max-bytes N    unsent output after which a connection is closed (default 4194304)
  --text-max-bytes N        largest message text (default 16384)
  --title-max-chars N       longest group title, in characters (default 100)
  --users-get-max N         users per users.get list (default 100)
  --presence-sub-max N      users per presence.sub list (default 1024)
  --login-max-failures N    failed logins per username per minute before 429 (default 10)
  --rate-burst N            per-connection token bucket size (default 100)
  --rate-per-sec N          tokens refilled per second; 0 disables the rate limit (default 20)
  --max-bad-frames N        malformed frames tolerated per 10 s before 1008 (default 50)
  --max-unauth-per-ip N     unauthenticated WebSockets per source address; 0: no cap (default 256)
  --max-connections-per-user N
                            live WebSockets per user; 0: no cap (default 32)
  --allowed-origin ORIGIN   a browser Origin allowed to open a WebSocket (repeatable, exact
                            match); without any, only same-origin pages (and non-browser
                            clients, which send no Origin) may connect
  --max-group-members N     members per group, the creator included (default 256)
  --chat-cache-members N    chats cached per event-loop thread, counted in members (~250 bytes
                            each); past it the chats used longest ago are dropped (default
                            1048576)
  --media STORE             where media bytes go: fs (DATA_DIR/media, the default), fs:DIR, or
                            s3://BUCKET?endpoint=URL&region=REGION[&path_style=true|false]
                            [&prefix=P] with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
                            (docs/operations.md)
  --media-max-bytes N       largest upload (default 104857600, 100 MiB)
  --media-direct-urls true|false
                            media.url answers the S3 store's own pre-signed URL instead of a
                            URL signed by parleyd (default false)
  --dedup-retention-days N  how long a send's cid is remembered for idempotent retries
                            (default 30; at least 7, or 0 for forever)
  --help                    show this text
)";
}

parse_outcome parse_command_line(const std::vector<std::string>& args) {
  parse_outcome out;
  try {
    std::vector<std::pair<std::string, std::string>> flags;
    std::string config_file;
    for (std::size_t i = 0; i < args.size(); ++i) {
      const auto& arg = args[i];
      if (arg == "--help" || arg == "-h") {
        out.message = usage();
        return out;
      }
      if (!arg.starts_with("--")) throw bad_option("unexpected argument '" + arg + "'");
      std::string key = arg.substr(2), value;
      if (auto eq = key.find('='); eq != std::string::npos) {
        value = key.substr(eq + 1);
        key.resize(eq);
      } else {
        if (i + 1 >= args.size()) throw bad_option("--" + key + " needs a value");
        value = args[++i];
      }
      if (key == "config") {
        config_file = value;
      } else {
        flags.emplace_back(key, value);
      }
    }
    config c;
    if (!config_file.empty()) apply_file(c, config_file);
    for (const auto& [key, value] : flags) apply(c, key, value);
    if (c.threads == 0) c.threads = std::max(1u, std::thread::hardware_concurrency());
    out.cfg = c;
  } catch (const bad_option& e) {
    out.exit_code = 2;
    out.message = std::string("parleyd: ") + e.what() + " (see --help)";
  }
  return out;
}

}  // namespace parley::server
