// parley — the terminal client of Parley.
//
//   parley [--server URL] [--json] COMMAND ...
//     register USERNAME [--display-name NAME]   create an account (asks for the password)
//     login USERNAME                            log in; the token is saved in
//                                               ~/.config/parley/session.json
//     logout                                    end this device's session
//     chats                                     list chats with unread counts
//     send USERNAME|CHAT TEXT...                send a message (opens the 1-on-1 chat if needed)
//     history USERNAME|CHAT [--limit N]         show recent messages, oldest first
//     tail                                      stream every event as it arrives
//     chat USERNAME|CHAT                        interactive: type lines to send, see replies
//
// The password comes from the terminal (not echoed), or from $PARLEY_PASSWORD for scripts.
#include <termios.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "client/http_client.hpp"
#include "client/ws_client.hpp"
#include "proto/json_writer.hpp"

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using parley::proto::json_writer;

struct failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- settings and the saved session ----

struct server_url {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string text() const { return "http://" + host + ":" + std::to_string(port); }
};

server_url parse_url(const std::string& url) {
  std::string rest = url;
  if (rest.starts_with("http://")) rest = rest.substr(7);
  else if (rest.find("://") != std::string::npos)
    throw failure("only http:// servers are supported (terminate TLS in front of parleyd)");
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  server_url out;
  auto colon = rest.rfind(':');
  out.host = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (colon != std::string::npos) out.port = static_cast<std::uint16_t>(std::stoul(rest.substr(colon + 1)));
  if (out.host == "localhost") out.host = "127.0.0.1";
  if (out.host.empty()) throw failure("bad server URL '" + url + "'");
  return out;
}

std::filesystem::path config_dir() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
    return std::filesystem::path(xdg) / "parley";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : ".") / ".config" / "parley";
}

struct saved_session {
  std::string server, token, user_id, username, device_id;
};

std::optional<saved_session> load_session() {
  std::ifstream in(config_dir() / "session.json");
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  auto v = json::parse(ss.str(), ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.as_object();
  auto get = [&](const char* k) {
    auto* x = o.if_contains(k);
    return x && x->is_string() ? std::string(x->as_string()) : std::string();
  };
  return saved_session{get("server"), get("token"), get("user_id"), get("username"),
                       get("device_id")};
}

void save_session(const saved_session& s) {
  auto dir = config_dir();
  std::filesystem::create_directories(dir);
  std::string out;
  json_writer w(out);
  w.begin_object().key("server").value(s.server).key("token").value(s.token);
  w.key("user_id").value(s.user_id).key("username").value(s.username);
  w.key("device_id").value(s.device_id).end_object();
  auto path = dir / "session.json";
  auto tmp = dir / "session.json.tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << out << "\n";
    if (!f) throw failure("cannot write " + tmp.string());
  }
  // The token is a secret: readable by its owner only.
  std::filesystem::permissions(tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::filesystem::rename(tmp, path);
}

std::string read_password(const std::string& prompt) {
  if (const char* env = std::getenv("PARLEY_PASSWORD")) return env;
  std::fprintf(stderr, "%s", prompt.c_str());
  termios old{};
  bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string password;
  std::getline(std::cin, password);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  return password;
}

std::string error_text(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (auto* e = v.as_object().if_contains("error"); e && e->is_object()) {
      auto& eo = e->as_object();
      return std::string(eo.at("code").as_string()) + ": " + std::string(eo.at("message").as_string());
    }
  }
  return body;
}

// ---- a connection that answers requests synchronously ----

class session {
 public:
  session(const server_url& url, const std::string& token) : url_(url) {
    ws_ = parley::client::ws_client::create(io_);
    bool open = false;
    ws_->connect({url.host, url.port, "/v1/ws", ""}, [&] { open = true; },
                 [this](std::string_view f) { on_frame(f); },
                 [this](int code, const std::string& why) {
                   closed_ = true;
                   close_code_ = code;
                   close_reason_ = why;
                 });
    run_until([&] { return open || closed_; });
    if (closed_) throw failure("cannot connect to " + url.text() + ": " + close_reason_);
    auto reply = call(R"({"op":"auth","token":)" + quoted(token) + "}");
    auth_ = reply;
    run_until([&] { return synced_ || closed_; });
    if (closed_) throw failure("connection closed (" + std::to_string(close_code_) + ")");
  }

  static std::string quoted(std::string_view s) {
    std::string out;
    json_writer::append_string(out, s);
    return out;
  }

  // Sends `{"op":...}` with an id and returns the `ok` result; throws with the error.
  json::object call(const std::string& op_json) {
    auto id = ++next_id_;
    ws_->send("{\"id\":" + std::to_string(id) + "," + op_json.substr(1));
    run_until([&] { return replies_.contains(id) || closed_; });
    if (!replies_.contains(id)) throw failure("connection closed (" + std::to_string(close_code_) + ")");
    auto reply = std::move(replies_[id]);
    replies_.erase(id);
    auto& o = reply.as_object();
    if (auto* err = o.if_contains("err")) {
      auto& e = err->as_object();
      throw failure(std::string(e.at("code").as_string()) + ": " + std::string(e.at("message").as_string()));
    }
    return o.at("ok").as_object();
  }

  void send_raw(const std::string& frame) { ws_->send(frame); }

  // Runs the event loop until `done` holds (or the connection closes).
  template <class Pred>
  void run_until(Pred done) {
    while (!done() && !closed_) {
      io_.run_one_for(std::chrono::milliseconds(100));
      if (io_.stopped()) io_.restart();
    }
  }
  // Runs the loop for a while (streaming).
  void run_for(std::chrono::milliseconds d) {
    io_.run_for(d);
    if (io_.stopped()) io_.restart();
  }

  std::function<void(const json::object&)> on_event;  // every event after `synced`
  std::vector<json::object> replayed;                  // msg events before `synced`
  bool closed() const { return closed_; }
  int close_code() const { return close_code_; }
  const json::object& auth() const { return auth_; }
  asio::io_context& io() { return io_; }

  // The chat to talk to `target`: a chat id, or a username (opens the 1-on-1 chat).
  std::string resolve_chat(const std::string& target) {
    if (target.size() == 27 && (target[0] == 'd' || target[0] == 'g')) return target;
    auto users = call(R"({"op":"users.get","usernames":[)" + quoted(target) + "]}");
    auto& list = users.at("users").as_array();
    if (list.empty()) throw failure("no user named '" + target + "'");
    auto peer = std::string(list[0].as_object().at("user_id").as_string());
    auto chat = call(R"({"op":"chat.open","peer":)" + quoted(peer) + "}");
    return std::string(chat.at("chat").as_object().at("chat").as_string());
  }

  // username of a user id (cached).
  std::string name_of(const std::string& user_id) {
    if (auto it = names_.find(user_id); it != names_.end()) return it->second;
    try {
      auto users = call(R"({"op":"users.get","ids":[)" + quoted(user_id) + "]}");
      auto& list = users.at("users").as_array();
      names_[user_id] = list.empty() ? user_id : std::string(list[0].as_object().at("username").as_string());
    } catch (const failure&) {
      names_[user_id] = user_id;
    }
    return names_[user_id];
  }

 private:
  void on_frame(std::string_view frame) {
    boost::system::error_code ec;
    auto v = json::parse(frame, ec);
    if (ec || !v.is_object()) return;
    auto& o = v.as_object();
    if (auto* re = o.if_contains("re"); re && re->is_int64()) {
      replies_[static_cast<std::uint64_t>(re->as_int64())] = std::move(v);
      return;
    }
    auto* ev = o.if_contains("ev");
    if (!ev || !ev->is_string()) return;
    if (ev->as_string() == "synced") {
      synced_ = true;
      return;
    }
    if (!synced_) {
      if (ev->as_string() == "msg") replayed.push_back(o);
      return;
    }
    if (on_event) on_event(o);
  }

  server_url url_;
  asio::io_context io_;
  std::shared_ptr<parley::client::ws_client> ws_;
  std::map<std::uint64_t, json::value> replies_;
  std::uint64_t next_id_ = 0;
  bool synced_ = false;
  bool closed_ = false;
  int close_code_ = 0;
  std::string close_reason_;
  json::object auth_;
  std::map<std::string, std::string> names_;
};

// ---- output ----

std::string clock_text(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm local{};
  localtime_r(&t, &local);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &local);
  return buf;
}

std::string describe(session& s, const json::object& m) {
  auto kind = m.at("kind").as_string();
  auto from = s.name_of(std::string(m.at("from").as_string()));
  std::string line = "[" + clock_text(m.at("ts").as_int64()) + "] #" + std::to_string(m.at("seq").as_int64()) + " ";
  if (kind == "system") {
    auto& sys = m.at("system").as_object();
    line += "* " + from + " " + std::string(sys.at("event").as_string());
    if (auto* users = sys.if_contains("users")) {
      line += ":";
      for (auto& u : users->as_array()) line += " " + s.name_of(std::string(u.as_string()));
    }
    if (auto* title = sys.if_contains("title")) line += " \"" + std::string(title->as_string()) + "\"";
    return line;
  }
  line += from + ": ";
  if (auto* text = m.if_contains("text")) line += std::string(text->as_string());
  return line;
}

void print_json(const json::value& v) { std::cout << json::serialize(v) << std::endl; }

// ---- commands ----

struct cli {
  server_url url;
  bool url_given = false;
  bool json_out = false;

  saved_session need_session() {
    auto s = load_session();
    if (!s || s->token.empty()) throw failure("not logged in: run `parley login USERNAME` first");
    if (!url_given && !s->server.empty()) url = parse_url(s->server);
    return *s;
  }

  int do_register(const std::vector<std::string>& a) {
    if (a.empty()) throw failure("usage: parley register USERNAME [--display-name NAME]");
    std::string display;
    for (std::size_t i = 1; i + 1 < a.size(); ++i)
      if (a[i] == "--display-name") display = a[i + 1];
    auto password = read_password("password for " + a[0] + ": ");
    std::string body;
    json_writer w(body);
    w.begin_object().key("username").value(a[0]).key("password").value(password);
    if (!display.empty()) w.key("display_name").value(display);
    w.end_object();
    auto r = parley::client::http_request(url.host, url.port, "POST", "/v1/users", body);
    if (r.status != 201) throw failure("register: " + (r.status ? error_text(r.body) : r.body));
    if (json_out) std::cout << r.body << std::endl;
    else std::printf("registered %s\n", a[0].c_str());
    return 0;
  }

  int do_login(const std::vector<std::string>& a) {
    if (a.empty()) throw failure("usage: parley login USERNAME");
    auto password = read_password("password for " + a[0] + ": ");
    std::string body;
    char host[256] = "terminal";
    gethostname(host, sizeof host - 1);
    json_writer(body).begin_object().key("username").value(a[0]).key("password").value(password)
        .key("device_name").value("parley cli on " + std::string(host)).end_object();
    auto r = parley::client::http_request(url.host, url.port, "POST", "/v1/sessions", body);
    if (r.status != 201) throw failure("login: " + (r.status ? error_text(r.body) : r.body));
    auto v = json::parse(r.body).as_object();
    saved_session s{url.text(), std::string(v.at("token").as_string()),
                    std::string(v.at("user_id").as_string()), a[0],
                    std::string(v.at("device_id").as_string())};
    save_session(s);
    if (json_out) std::cout << R"({"user_id":)" << session::quoted(s.user_id) << R"(,"device_id":)"
                            << session::quoted(s.device_id) << "}" << std::endl;
    else std::printf("logged in as %s (device %s)\n", a[0].c_str(), s.device_id.c_str());
    return 0;
  }

  int do_logout() {
    auto s = need_session();
    auto r = parley::client::http_request(url.host, url.port, "DELETE", "/v1/sessions/current", "", s.token);
    std::filesystem::remove(config_dir() / "session.json");
    if (r.status != 204 && r.status != 401) throw failure("logout: " + error_text(r.body));
    if (!json_out) std::printf("logged out\n");
    return 0;
  }

  int do_chats() {
    auto saved = need_session();
    session s(url, saved.token);
    auto chats = s.call(R"({"op":"chats"})");
    if (json_out) return print_json(chats), 0;
    for (auto& c : chats.at("chats").as_array()) {
      auto& o = c.as_object();
      std::string name;
      if (o.at("kind").as_string() == "group") {
        name = std::string(o.at("title").as_string());
      } else {
        for (auto& m : o.at("members").as_array()) {
          auto id = std::string(m.as_object().at("user_id").as_string());
          if (id != saved.user_id) name = s.name_of(id);
        }
      }
      std::string preview;
      if (auto& last = o.at("last_msg"); last.is_object()) {
        if (auto* t = last.as_object().if_contains("text")) preview = std::string(t->as_string());
        if (preview.size() > 40) preview = preview.substr(0, 37) + "...";
      }
      std::printf("%-27s %-24s %4lld unread  %s\n", std::string(o.at("chat").as_string()).c_str(),
                  name.c_str(), static_cast<long long>(o.at("unread").as_int64()), preview.c_str());
    }
    return 0;
  }

  static std::string new_cid() {
    static std::uint64_t n = 0;
    auto now = std::chrono::system_clock::now().time_since_epoch().count();
    return "cli-" + std::to_string(now) + "-" + std::to_string(getpid()) + "-" + std::to_string(++n);
  }

  int do_send(const std::vector<std::string>& a) {
    if (a.size() < 2) throw failure("usage: parley send USERNAME|CHAT TEXT...");
    std::string text;
    for (std::size_t i = 1; i < a.size(); ++i) text += (i > 1 ? " " : "") + a[i];
    auto saved = need_session();
    session s(url, saved.token);
    auto chat = s.resolve_chat(a[0]);
    auto r = s.call(R"({"op":"send","chat":)" + session::quoted(chat) + R"(,"cid":)" +
                    session::quoted(new_cid()) + R"(,"text":)" + session::quoted(text) + "}");
    if (json_out) return print_json(r), 0;
    std::printf("sent #%lld to %s\n", static_cast<long long>(r.at("seq").as_int64()), chat.c_str());
    return 0;
  }

  int do_history(const std::vector<std::string>& a) {
    if (a.empty()) throw failure("usage: parley history USERNAME|CHAT [--limit N]");
    int limit = 20;
    for (std::size_t i = 1; i + 1 < a.size(); ++i)
      if (a[i] == "--limit") limit = std::stoi(a[i + 1]);
    auto saved = need_session();
    session s(url, saved.token);
    auto chat = s.resolve_chat(a[0]);
    auto h = s.call(R"({"op":"history","chat":)" + session::quoted(chat) + R"(,"limit":)" +
                    std::to_string(limit) + "}");
    if (json_out) return print_json(h), 0;
    auto& msgs = h.at("messages").as_array();
    for (auto it = msgs.rbegin(); it != msgs.rend(); ++it)
      std::printf("%s\n", describe(s, it->as_object()).c_str());
    return 0;
  }

  // Streams events; acks each message so this device's cursor follows.
  void stream(session& s, const std::string& only_chat) {
    auto show = [&](const json::object& e) {
      auto ev = e.at("ev").as_string();
      if (ev == "msg") {
        auto chat = std::string(e.at("chat").as_string());
        s.send_raw(R"({"op":"ack","chat":)" + session::quoted(chat) + R"(,"seq":)" +
                   std::to_string(e.at("seq").as_int64()) + "}");
        if (!only_chat.empty() && chat != only_chat) return;
      } else if (!only_chat.empty() && ev != "typing") {
        return;
      }
      if (json_out) {
        print_json(e);
      } else if (ev == "msg") {
        std::printf("%s\n", describe(s, e).c_str());
      } else if (ev == "typing") {
        if (e.at("on").as_bool()) std::printf("(%s is typing)\n", s.name_of(std::string(e.at("user").as_string())).c_str());
      } else if (ev == "receipt") {
        std::printf("(%s %s up to #%lld)\n", s.name_of(std::string(e.at("user").as_string())).c_str(),
                    e.at("kind").as_string() == "read" ? "read" : "received",
                    static_cast<long long>(e.at("seq").as_int64()));
      } else {
        print_json(e);
      }
      std::fflush(stdout);
    };
    for (auto& m : s.replayed) show(m);
    s.replayed.clear();
    s.on_event = show;
  }

  int do_tail() {
    auto saved = need_session();
    session s(url, saved.token);
    stream(s, "");
    auto heartbeat = std::chrono::milliseconds(s.auth().at("heartbeat_ms").as_int64());
    while (!s.closed()) {
      s.run_for(heartbeat / 2);
      s.send_raw(R"({"op":"ping"})");
    }
    std::fprintf(stderr, "parley: connection closed (%d)\n", s.close_code());
    return 1;
  }

  int do_chat(const std::vector<std::string>& a) {
    if (a.empty()) throw failure("usage: parley chat USERNAME|CHAT");
    auto saved = need_session();
    session s(url, saved.token);
    auto chat = s.resolve_chat(a[0]);
    auto h = s.call(R"({"op":"history","chat":)" + session::quoted(chat) + R"(,"limit":20})");
    auto& msgs = h.at("messages").as_array();
    for (auto it = msgs.rbegin(); it != msgs.rend(); ++it)
      std::printf("%s\n", describe(s, it->as_object()).c_str());
    std::printf("-- chatting in %s; type a line and Enter to send, Ctrl-D to quit --\n", chat.c_str());
    std::fflush(stdout);
    stream(s, chat);
    // Lines are read on their own thread and handed to the loop's thread.
    std::mutex mutex;
    std::vector<std::string> lines;
    bool eof = false;
    std::thread reader([&] {
      std::string line;
      while (std::getline(std::cin, line)) {
        std::lock_guard lock(mutex);
        lines.push_back(line);
      }
      std::lock_guard lock(mutex);
      eof = true;
    });
    reader.detach();
    auto heartbeat = std::chrono::milliseconds(s.auth().at("heartbeat_ms").as_int64());
    auto last_ping = std::chrono::steady_clock::now();
    for (;;) {
      s.run_for(std::chrono::milliseconds(50));
      std::vector<std::string> todo;
      bool done;
      {
        std::lock_guard lock(mutex);
        todo.swap(lines);
        done = eof;
      }
      for (auto& line : todo) {
        if (line.empty()) continue;
        try {
          s.call(R"({"op":"send","chat":)" + session::quoted(chat) + R"(,"cid":)" +
                 session::quoted(new_cid()) + R"(,"text":)" + session::quoted(line) + "}");
        } catch (const failure& e) {
          std::fprintf(stderr, "parley: %s\n", e.what());
        }
      }
      if (done || s.closed()) break;
      if (std::chrono::steady_clock::now() - last_ping > heartbeat / 2) {
        s.send_raw(R"({"op":"ping"})");
        last_ping = std::chrono::steady_clock::now();
      }
    }
    return 0;
  }
};

int usage(int code) {
  std::fputs(R"(parley — the terminal client of Parley

Usage: parley [--server URL] [--json] COMMAND ...

Commands:
  register USERNAME [--display-name NAME]   create an account (asks for the password)
  login USERNAME                            log in as a new device; the token is saved in
                                            ~/.config/parley/session.json (mode 600)
  logout                                    end this device's session
  chats                                     list chats with unread counts and last message
  send USERNAME|CHAT TEXT...                send a message (opens the 1-on-1 chat if needed)
  history USERNAME|CHAT [--limit N]         recent messages, oldest first (default 20)
  tail                                      stream every event as it arrives
  chat USERNAME|CHAT                        interactive: type lines to send, see replies

Options:
  --server URL   the server (default: the one of the saved session, else
                 http://127.0.0.1:8080)
  --json         print results and events as JSON, one per line (for scripts)
The password is read from the terminal without echo, or from $PARLEY_PASSWORD.
)",
             code == 0 ? stdout : stderr);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  cli c;
  std::vector<std::string> rest;
  try {
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--server" && i + 1 < args.size()) {
        c.url = parse_url(args[++i]);
        c.url_given = true;
      } else if (args[i] == "--json") {
        c.json_out = true;
      } else if (args[i] == "--help" || args[i] == "-h") {
        return usage(0);
      } else {
        rest.push_back(args[i]);
      }
    }
    if (rest.empty()) return usage(2);
    auto command = rest[0];
    std::vector<std::string> a(rest.begin() + 1, rest.end());
    if (command == "register") return c.do_register(a);
    if (command == "login") return c.do_login(a);
    if (command == "logout") return c.do_logout();
    if (command == "chats") return c.do_chats();
    if (command == "send") return c.do_send(a);
    if (command == "history") return c.do_history(a);
    if (command == "tail") return c.do_tail();
    if (command == "chat") return c.do_chat(a);
    std::fprintf(stderr, "parley: unknown command '%s'\n", command.c_str());
    return usage(2);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parley: %s\n", e.what());
    return 1;
  }
}
