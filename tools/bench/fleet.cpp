#include "bench/fleet.hpp"

#include <boost/asio/post.hpp>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <latch>
#include <mutex>

#include "bench/stats.hpp"

namespace parley::bench {

namespace asio = boost::asio;

namespace {

// Where the value of `"key":` starts in `frame` at or after `from`, or npos. A generator reads a
// million frames a second: no allocation, and memmem rather than a search that stops at every
// quote of the JSON.
std::size_t value_of(std::string_view frame, std::string_view key, std::size_t from,
                     bool string_value) {
  char needle[64];
  std::size_t n = 0;
  if (key.size() + 4 > sizeof needle || from > frame.size()) return std::string_view::npos;
  needle[n++] = '"';
  for (char ch : key) needle[n++] = ch;
  needle[n++] = '"';
  needle[n++] = ':';
  if (string_value) needle[n++] = '"';
  const void* at = memmem(frame.data() + from, frame.size() - from, needle, n);
  if (!at) return std::string_view::npos;
  return static_cast<std::size_t>(static_cast<const char*>(at) - frame.data()) + n;
}

}  // namespace

std::string_view json_string_field(std::string_view frame, std::string_view key,
                                   std::size_t* after) {
  auto start = value_of(frame, key, after ? *after : 0, true);
  if (start == std::string_view::npos) return {};
  auto end = frame.find('"', start);
  if (end == std::string_view::npos) return {};
  if (after) *after = end + 1;
  return frame.substr(start, end - start);
}

std::uint64_t json_uint_field(std::string_view frame, std::string_view key, bool* found,
                              std::size_t* after) {
  auto start = value_of(frame, key, after ? *after : 0, false);
  std::uint64_t v = 0;
  bool ok = false;
  if (start != std::string_view::npos) {
    const char* first = frame.data() + start;
    auto [end, ec] = std::from_chars(first, frame.data() + frame.size(), v);
    ok = ec == std::errc{} && end != first;
    if (ok && after) *after = static_cast<std::size_t>(end - frame.data());
  }
  if (found) *found = ok;
  return ok ? v : 0;
}

fleet::fleet(options opts) : opts_(std::move(opts)) {
  for (std::size_t i = 0; i < opts_.threads; ++i) {
    ios_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*ios_.back()));
  }
  counters_.resize(opts_.threads);
  for (std::size_t i = 0; i < opts_.threads; ++i)
    threads_.emplace_back([this, i] { ios_[i]->run(); });
}

fleet::~fleet() {
  for (auto& g : guards_) g.reset();
  for (auto& io : ios_) io->stop();
  for (auto& t : threads_) t.join();
}

void fleet::post(connection& c, std::function<void()> fn) { asio::post(*ios_[c.thread], std::move(fn)); }
void fleet::post_thread(std::size_t thread, std::function<void()> fn) {
  asio::post(*ios_[thread], std::move(fn));
}

void fleet::request(connection& c, const std::string& op_json,
                    std::function<void(std::string_view)> done) {
  auto id = "s" + std::to_string(++c.next_request);
  c.pending.emplace(id, std::move(done));
  // op_json is `{"op":...}`: put the id first.
  c.ws->send("{\"id\":\"" + id + "\"," + op_json.substr(1));
}

void fleet::on_frame(connection& c, std::string_view frame) {
  auto& counters = counters_[c.thread];
  if (frame.starts_with("{\"ev\":\"msg\"")) {
    msg_event m;
    std::size_t at = 0;  // chat, seq, ..., text: in the server's order (proto/encode.cpp)
    m.chat = json_string_field(frame, "chat", &at);
    m.seq = json_uint_field(frame, "seq", nullptr, &at);
    m.text = json_string_field(frame, "text", &at);
    if (!c.synced) ++c.msgs_before_synced;
    ++counters.msgs;
    if (m.seq > c.last_seq) c.last_seq = m.seq;
    if (c.on_msg) c.on_msg(c, m);
    return;
  }
  if (frame.starts_with("{\"re\":\"s")) {
    auto id = json_string_field(frame, "re");
    if (auto it = c.pending.find(std::string(id)); it != c.pending.end()) {
      auto done = std::move(it->second);
      c.pending.erase(it);
      done(frame);
    }
    return;
  }
  if (frame.starts_with("{\"re\":")) {
    // A send's reply: its id is the scheduled time of the send.
    bool numeric = false;
    auto scheduled = json_uint_field(frame, "re", &numeric);
    if (!numeric) return;
    if (frame.find("\"ok\":") != std::string_view::npos) {
      ++counters.send_ok;
      if (measuring(static_cast<std::int64_t>(scheduled)))
        counters.ack_latency_ns.push_back(steady_ns() - static_cast<std::int64_t>(scheduled));
    } else {
      ++counters.send_err;
      if (frame.find("rate_limited") != std::string_view::npos) ++counters.rate_limited;
    }
    return;
  }
  if (frame == R"({"ev":"synced"})") {
    c.synced = true;
    c.synced_ns = steady_ns();
  }
}

void fleet::start_connection(connection& c, std::atomic<std::size_t>& done,
                             std::atomic<std::size_t>& ok) {
  auto where = opts_.server;
  if (opts_.source_addresses > 0)
    where.local_address = "127.0.0." + std::to_string(2 + c.index % opts_.source_addresses);
  c.ws = opts_.beast_client ? client::ws_client::create(*ios_[c.thread])
                            : client::ws_client::create_lean(*ios_[c.thread]);
  c.connect_started_ns = steady_ns();
  auto* cp = &c;
  auto finished = std::make_shared<bool>(false);
  auto finish = [&done, &ok, finished](bool success) {
    if (*finished) return;
    *finished = true;
    if (success) ++ok;
    ++done;
  };
  c.ws->connect(
      where,
      [cp]() { cp->ws->send(R"({"op":"auth","id":"auth","token":")" + cp->acct.token + "\"}"); },
      [this, cp, finish](std::string_view frame) {
        bool was_synced = cp->synced;
        if (frame.starts_with(R"({"re":"auth","err")")) {
          std::fprintf(stderr, "parley-bench: auth of %s refused: %.*s\n",
                       cp->acct.username.c_str(), static_cast<int>(frame.size()), frame.data());
          finish(false);
          return;
        }
        on_frame(*cp, frame);
        if (!was_synced && cp->synced) finish(true);
      },
      [this, cp, finish](int code, const std::string& why) {
        cp->closed = true;
        cp->close_code = code;
        ++counters_[cp->thread].closes;
        if (!cp->synced) {
          static std::atomic<int> reported{0};
          if (reported.fetch_add(1) < 5)
            std::fprintf(stderr, "parley-bench: connection %zu failed: %d %s\n", cp->index, code,
                         why.c_str());
        }
        finish(false);
      });
}

std::size_t fleet::connect_all(const std::vector<account>& accounts, msg_handler on_msg) {
  std::size_t first = conns_.size();
  for (std::size_t i = 0; i < accounts.size(); ++i) {
    auto c = std::make_unique<connection>();
    c->index = first + i;
    c->thread = c->index % ios_.size();
    c->acct = accounts[i];
    c->on_msg = on_msg;
    conns_.push_back(std::move(c));
  }
  std::atomic<std::size_t> done{0}, ok{0};
  std::size_t started = first;
  while (started < conns_.size() || done < conns_.size() - first) {
    // Keep at most connect_window set-ups in flight.
    while (started < conns_.size() && (started - first) - done < opts_.connect_window) {
      auto* c = conns_[started++].get();
      post(*c, [this, c, &done, &ok] { start_connection(*c, done, ok); });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return ok.load();
}

void fleet::for_each_blocking(const std::function<void(connection&)>& fn) {
  std::latch all(static_cast<std::ptrdiff_t>(conns_.size()));
  for (auto& c : conns_) {
    auto* cp = c.get();
    post(*cp, [&fn, cp, &all] {
      fn(*cp);
      all.count_down();
    });
  }
  all.wait();
}

void fleet::close_all() {
  for_each_blocking([](connection& c) {
    if (c.ws) c.ws->close(1000);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

}  // namespace parley::bench
