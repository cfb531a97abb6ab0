// parley-bench — the load generator of Parley. It speaks the real protocol to a running
// parleyd and measures what PROTOCOL.md promises: acks, deliveries, replay, memory.
//
// Open-loop by default: every sender has a schedule (a send every 1/rate seconds, offset per
// sender), and every latency is measured from the scheduled time, so a slow server cannot hide
// its stalls by slowing the generator down (no coordinated omission).
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <latch>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "bench/fleet.hpp"
#include "bench/stats.hpp"
#include "client/http_client.hpp"
#include "proto/json_writer.hpp"

namespace parley::bench {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct options {
  std::string scenario;
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  int server_pid = 0;
  std::string tokens_file;
  std::size_t threads = 1;
  std::size_t source_addresses = 0;
  bool beast_client = false;
  std::size_t connections = 1000;  // idle
  std::size_t pairs = 100;         // direct
  std::size_t groups = 1;          // group
  std::size_t members = 256;       // group
  std::size_t senders = 1;         // group: senders per group
  std::size_t devices = 100;       // reconnect
  std::size_t backlog = 100;       // reconnect
  double rate = 1000;              // messages per second, all senders together
  double duration = 10;            // seconds measured
  double warmup = 2;               // seconds not measured
  bool closed_loop = false;
  bool json = false;
  std::string json_out;  // also write the JSON report to this file
};

int usage(int code) {
  std::fputs(R"(parley-bench — load generator for parleyd (speaks the real protocol)

Usage: parley-bench SCENARIO [options]

Scenarios:
  idle       hold --connections authenticated connections; reports the server's RSS per
             connection above its baseline
  direct     --pairs pairs exchange --rate messages/s in total for --duration seconds;
             send->ack and send->deliver latency
  group      --groups groups of --members members, all connected; --senders per group send
             --rate messages/s in total; deliveries/s, per-delivery latency and latency to
             the last recipient
  reconnect  --devices devices, each with a backlog of --backlog messages, reconnect at once;
             time from connect to `synced`

Options:
  --server HOST:PORT     parleyd to load (default 127.0.0.1:8080); numeric host
  --server-pid PID       the server process, for CPU and RSS (default: the process that listens
                         on the port, found through /proc)
  --tokens FILE          accounts from `parley-admin provision` (username, user_id, token per
                         line); without it, accounts are registered over HTTP (slow: argon2id)
  --threads N            client threads (default 1)
  --source-addresses N   spread connections over 127.0.0.2 .. 127.0.0.(N+1) (default: one
                         per 20 000 connections, 0 below that)
  --connections N        idle: connections (default 1000)
  --pairs N              direct: pairs (default 100)
  --groups N --members N --senders N    group: shape (default 1 x 256, 1 sender)
  --devices N --backlog N               reconnect: shape (default 100 x 100)
  --rate R               messages per second offered, all senders together (default 1000)
  --duration S           seconds measured (default 10); --warmup S before (default 2)
  --beast-client         use Beast's WebSocket client (as the terminal client does) instead of
                         the lean one, to compare what the generator itself costs
  --closed-loop          send the next message only when the previous is acked (labelled
                         in the report; open-loop is the default and the honest measure)
  --json                 print the report as JSON
  --json-out FILE        print the table and also write the JSON report to FILE
Run the server with --rate-per-sec 0 --max-unauth-per-ip 0 --max-connections-per-user 0
(the protocol's per-connection limits would otherwise throttle the generator).
)",
             code == 0 ? stdout : stderr);
  return code;
}

std::optional<options> parse(int argc, char** argv) {
  options o;
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.empty()) return std::nullopt;
  o.scenario = a[0];
  for (std::size_t i = 1; i < a.size(); ++i) {
    auto next = [&]() -> std::string {
      if (i + 1 >= a.size()) throw std::runtime_error(a[i] + " needs a value");
      return a[++i];
    };
    const auto& k = a[i];
    if (k == "--server") {
      auto v = next();
      auto colon = v.rfind(':');
      if (colon == std::string::npos) throw std::runtime_error("--server wants HOST:PORT");
      o.host = v.substr(0, colon);
      o.port = static_cast<std::uint16_t>(std::stoul(v.substr(colon + 1)));
    } else if (k == "--server-pid") o.server_pid = std::stoi(next());
    else if (k == "--tokens") o.tokens_file = next();
    else if (k == "--threads") o.threads = std::stoul(next());
    else if (k == "--source-addresses") o.source_addresses = std::stoul(next());
    else if (k == "--beast-client") o.beast_client = true;
    else if (k == "--connections") o.connections = std::stoul(next());
    else if (k == "--pairs") o.pairs = std::stoul(next());
    else if (k == "--groups") o.groups = std::stoul(next());
    else if (k == "--members") o.members = std::stoul(next());
    else if (k == "--senders") o.senders = std::stoul(next());
    else if (k == "--devices") o.devices = std::stoul(next());
    else if (k == "--backlog") o.backlog = std::stoul(next());
    else if (k == "--rate") o.rate = std::stod(next());
    else if (k == "--duration") o.duration = std::stod(next());
    else if (k == "--warmup") o.warmup = std::stod(next());
    else if (k == "--closed-loop") o.closed_loop = true;
    else if (k == "--json") o.json = true;
    else if (k == "--json-out") o.json_out = next();
    else throw std::runtime_error("unknown option " + k);
  }
  if (o.threads == 0 || o.rate <= 0 || o.duration <= 0 || o.members < 2)
    throw std::runtime_error("threads, rate, duration must be positive, members at least 2");
  return o;
}

// Distinguishes this run's cids from those of earlier runs with the same accounts (a reused
// cid with another text would be a `conflict`).
const std::string& run_tag() {
  static const std::string tag = "b" + std::to_string(steady_ns() % 1'000'000'007) + "-";
  return tag;
}

// ---- accounts ----

std::vector<account> load_accounts(const options& o, std::size_t needed) {
  std::vector<account> out;
  if (!o.tokens_file.empty()) {
    std::ifstream in(o.tokens_file);
    if (!in) throw std::runtime_error("cannot read " + o.tokens_file);
    std::string line;
    while (out.size() < needed && std::getline(in, line)) {
      std::istringstream f(line);
      account a;
      if (f >> a.username >> a.user_id >> a.token) out.push_back(std::move(a));
    }
    if (out.size() < needed)
      throw std::runtime_error(o.tokens_file + " holds " + std::to_string(out.size()) +
                               " accounts; this run needs " + std::to_string(needed) +
                               " (parley-admin provision --users N)");
    return out;
  }
  // Registered over HTTP: each costs an argon2id hash on the server, by design.
  auto tag = std::to_string(steady_ns() % 1000000000);
  for (std::size_t i = 0; i < needed; ++i) {
    account a;
    a.username = "b" + tag + "_" + std::to_string(i);
    std::string body = R"({"username":")" + a.username + R"(","password":"bench-password"})";
    auto reg = client::http_request(o.host, o.port, "POST", "/v1/users", body);
    if (reg.status != 201) throw std::runtime_error("register failed: " + reg.body);
    auto login = client::http_request(o.host, o.port, "POST", "/v1/sessions", body);
    if (login.status != 201) throw std::runtime_error("login failed: " + login.body);
    auto v = boost::json::parse(login.body).as_object();
    a.user_id = std::string(v.at("user_id").as_string());
    a.token = std::string(v.at("token").as_string());
    out.push_back(std::move(a));
  }
  return out;
}

// ---- the report ----

struct report {
  std::string scenario;
  bool closed_loop = false;
  std::vector<std::pair<std::string, double>> figures;  // in order
  std::map<std::string, latency_samples> latencies;
  std::vector<std::string> notes;

  void add(const std::string& k, double v) { figures.emplace_back(k, v); }

  void print(bool json, const std::string& json_file = {}) {
    if (json || !json_file.empty()) {
      std::string out;
      proto::json_writer w(out);
      w.begin_object().key("scenario").value(scenario).key("mode").value(
          closed_loop ? "closed-loop" : "open-loop");
      for (auto& [k, v] : figures) {
        w.key(k).raw(std::isfinite(v) ? std::to_string(v) : std::string("null"));
      }
      w.key("latency_us").begin_object();
      for (auto& [k, l] : latencies) {
        w.key(k).begin_object().key("count").value(static_cast<std::uint64_t>(l.count()));
        for (auto [name, q] : quantiles()) w.key(name).raw(std::to_string(l.quantile_us(q)));
        w.end_object();
      }
      w.end_object().key("notes").begin_array();
      for (auto& n : notes) w.value(n);
      w.end_array().end_object();
      if (!json_file.empty()) {
        std::ofstream(json_file) << out << "\n";
      }
      if (json) {
        std::cout << out << "\n";
        return;
      }
    }
    std::printf("scenario: %s (%s)\n", scenario.c_str(), closed_loop ? "closed-loop" : "open-loop");
    for (auto& [k, v] : figures) std::printf("  %-34s %14.1f\n", k.c_str(), v);
    if (!latencies.empty()) {
      std::printf("  %-22s %9s %9s %9s %9s %9s %9s\n", "latency (us)", "count", "p50", "p90",
                  "p99", "p99.9", "max");
      for (auto& [k, l] : latencies) {
        std::printf("  %-22s %9zu %9.1f %9.1f %9.1f %9.1f %9.1f\n", k.c_str(), l.count(),
                    l.quantile_us(0.5), l.quantile_us(0.9), l.quantile_us(0.99),
                    l.quantile_us(0.999), l.quantile_us(1.0));
      }
    }
    for (auto& n : notes) std::printf("  note: %s\n", n.c_str());
  }
  static std::vector<std::pair<const char*, double>> quantiles() {
    return {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}, {"max", 1.0}};
  }
};

// ---- the open-loop driver ----

// One sender: a connection, the chat it sends to, and its schedule.
struct sender {
  connection* conn = nullptr;
  std::string chat;
  std::int64_t next_ns = 0;
  std::int64_t interval_ns = 0;
  std::uint64_t sent = 0;
  std::uint64_t slot = 0;  // index among all senders (for message numbering)
  bool waiting = false;    // closed loop: a send is unanswered
};

// Runs the senders of every thread for warmup + duration seconds. Each message's text is
// "<scheduled ns>:<message number>" and its request id the scheduled ns.
class driver {
 public:
  driver(fleet& f, std::vector<sender> senders, const options& o)
      : fleet_(f), opts_(o), by_thread_(f.threads()) {
    for (auto& s : senders) by_thread_[s.conn->thread].push_back(s);
  }

  // Blocks until the run and a drain period are over.
  void run(std::int64_t start_ns, std::int64_t stop_ns, std::uint64_t per_sender_cap) {
    cap_ = per_sender_cap;
    std::latch finished(static_cast<std::ptrdiff_t>(by_thread_.size()));
    for (std::size_t t = 0; t < by_thread_.size(); ++t) {
      for (auto& s : by_thread_[t]) s.next_ns = start_ns + s.next_ns;  // next_ns held the offset
      fleet_.post_thread(t, [this, t, stop_ns, &finished] { tick(t, stop_ns, finished); });
    }
    finished.wait();
  }

  std::uint64_t offered() const {
    std::uint64_t n = 0;
    for (auto& v : by_thread_)
      for (auto& s : v) n += s.sent;
    return n;
  }

 private:
  void tick(std::size_t t, std::int64_t stop_ns, std::latch& finished) {
    auto now = steady_ns();
    for (auto& s : by_thread_[t]) {
      if (s.conn->closed) continue;
      while (s.next_ns <= now && s.next_ns < stop_ns && s.sent < cap_) {
        if (opts_.closed_loop && s.conn->ws->queued_bytes() > 0) break;
        send(s);
        s.next_ns += s.interval_ns;
      }
    }
    if (now >= stop_ns) {
      finished.count_down();
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(fleet_.io(t), 200us);
    timer->async_wait([this, t, stop_ns, &finished, timer](auto) { tick(t, stop_ns, finished); });
  }

  void send(sender& s) {
    auto number = s.slot * cap_ + s.sent;
    std::string frame;
    frame.reserve(160);
    frame.append(R"({"op":"send","id":)").append(std::to_string(s.next_ns));
    frame.append(R"(,"chat":")").append(s.chat).append(R"(","cid":")").append(run_tag());
    frame.append(std::to_string(s.slot)).push_back('-');
    frame.append(std::to_string(s.sent)).append(R"(","text":")");
    frame.append(std::to_string(s.next_ns)).push_back(':');
    frame.append(std::to_string(number)).append("\"}");
    s.conn->ws->send(std::move(frame));
    ++s.sent;
  }

  fleet& fleet_;
  const options& opts_;
  std::vector<std::vector<sender>> by_thread_;
  std::uint64_t cap_ = 0;
};

// Parses "<scheduled ns>:<number>" from a message text.
bool parse_text(std::string_view text, std::int64_t& scheduled, std::uint64_t& number) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  auto [p1, e1] = std::from_chars(text.data(), text.data() + colon, scheduled);
  auto [p2, e2] = std::from_chars(text.data() + colon + 1, text.data() + text.size(), number);
  return e1 == std::errc{} && e2 == std::errc{};
}

// Acks every 32 messages so that cursors move as with real clients.
void ack_now_and_then(connection& c, const msg_event& m) {
  if (m.seq >= c.acked_seq + 32) {
    c.acked_seq = m.seq;
    c.ws->send(R"({"op":"ack","chat":")" + std::string(m.chat) + R"(","seq":)" +
               std::to_string(m.seq) + "}");
  }
}

struct server_probe {
  int pid = 0;
  process_sample start;
  void begin() { start = sample_process(pid); }
  void end(report& r, double seconds, const char* prefix = "server") {
    auto stop = sample_process(pid);
    if (!start.ok || !stop.ok) {
      r.notes.push_back("server CPU/RSS not available (pass --server-pid)");
      return;
    }
    r.add(std::string(prefix) + " cpu % (of one core)",
          100.0 * (stop.cpu_seconds - start.cpu_seconds) / seconds);
    r.add(std::string(prefix) + " rss MiB", static_cast<double>(stop.rss_bytes) / (1 << 20));
  }
};

// The send->ack latencies of the measured window, from every thread.
std::vector<std::int64_t> collect_ack_latencies(fleet& f) {
  std::vector<std::int64_t> out;
  for (std::size_t t = 0; t < f.threads(); ++t) {
    std::latch done(1);
    f.post_thread(t, [&] {
      for (auto ns : f.counters(t).ack_latency_ns) out.push_back(ns);
      f.counters(t).ack_latency_ns.clear();
      done.count_down();
    });
    done.wait();
  }
  return out;
}

thread_counters sum_counters(fleet& f) {
  thread_counters total;
  for (std::size_t t = 0; t < f.threads(); ++t) {
    std::latch done(1);
    f.post_thread(t, [&] {
      auto& c = f.counters(t);
      total.send_ok += c.send_ok;
      total.send_err += c.send_err;
      total.rate_limited += c.rate_limited;
      total.msgs += c.msgs;
      total.closes += c.closes;
      done.count_down();
    });
    done.wait();
  }
  return total;
}

// Runs the senders open-loop for warm-up + duration, samples the server over the measured
// window, waits for the last answers, then stops handing events to the scenario. Returns the
// number of messages sent.
std::uint64_t run_measured(fleet& f, std::vector<sender> senders, const options& o,
                           server_probe& probe, report& r, std::uint64_t per_sender_cap) {
  driver d(f, std::move(senders), o);
  auto start = steady_ns() + 50'000'000;
  auto warm_end = start + static_cast<std::int64_t>(o.warmup * 1e9);
  auto stop = warm_end + static_cast<std::int64_t>(o.duration * 1e9);
  f.measure_from(warm_end);
  std::thread probe_thread([&] {
    std::this_thread::sleep_until(
        std::chrono::steady_clock::time_point(std::chrono::nanoseconds(warm_end)));
    probe.begin();
  });
  d.run(start, stop, per_sender_cap);
  probe_thread.join();
  probe.end(r, o.duration);
  std::this_thread::sleep_for(1s);  // let the last acks and deliveries arrive
  f.drop_handlers();
  return d.offered();
}

// ---- scenarios ----

void scenario_idle(const options& o, fleet& f, report& r, server_probe& probe) {
  auto accounts = load_accounts(o, o.connections);
  auto before = sample_process(probe.pid);
  auto t0 = steady_ns();
  auto ok = f.connect_all(accounts, nullptr);
  auto setup_s = static_cast<double>(steady_ns() - t0) / 1e9;
  r.add("connections requested", static_cast<double>(o.connections));
  r.add("connections authenticated", static_cast<double>(ok));
  r.add("set-up seconds", setup_s);
  // Hold them, with a heartbeat as clients do (the server closes silent connections).
  auto until = steady_ns() + static_cast<std::int64_t>(o.duration * 1e9);
  while (steady_ns() < until) {
    f.for_each_blocking([](connection& c) {
      if (!c.closed) c.ws->send(R"({"op":"ping"})");
    });
    std::this_thread::sleep_for(
        std::min<std::chrono::nanoseconds>(2s, std::chrono::nanoseconds(until - steady_ns())));
  }
  auto after = sample_process(probe.pid);
  if (before.ok && after.ok && ok > 0) {
    r.add("server rss baseline MiB", static_cast<double>(before.rss_bytes) / (1 << 20));
    r.add("server rss with connections MiB", static_cast<double>(after.rss_bytes) / (1 << 20));
    r.add("server rss bytes per connection",
          static_cast<double>(after.rss_bytes - before.rss_bytes) / static_cast<double>(ok));
  } else {
    r.notes.push_back("server RSS not available (pass --server-pid)");
  }
  auto totals = sum_counters(f);
  r.add("connections closed by the server", static_cast<double>(totals.closes));
}

void scenario_direct(const options& o, fleet& f, report& r, server_probe& probe) {
  auto accounts = load_accounts(o, 2 * o.pairs);
  std::vector<latency_samples> deliver(f.threads());
  auto handler = [&deliver, &f](connection& c, const msg_event& m) {
    std::int64_t scheduled;
    std::uint64_t number;
    if (parse_text(m.text, scheduled, number) && f.measuring(scheduled))
      deliver[c.thread].add(steady_ns() - scheduled);
    ack_now_and_then(c, m);
  };
  auto ok = f.connect_all(accounts, handler);
  if (ok != accounts.size()) throw std::runtime_error("not every connection authenticated");
  // Each pair's chat, opened by its first member.
  auto& conns = f.connections();
  std::latch opened(static_cast<std::ptrdiff_t>(o.pairs));
  for (std::size_t p = 0; p < o.pairs; ++p) {
    auto* a = conns[2 * p].get();
    auto* b = conns[2 * p + 1].get();
    f.post(*a, [&f, a, b, &opened] {
      f.request(*a, R"({"op":"chat.open","peer":")" + b->acct.user_id + "\"}",
                [a, b, &opened](std::string_view reply) {
                  a->chat = std::string(json_string_field(reply, "chat"));
                  b->chat = a->chat;
                  opened.count_down();
                });
    });
  }
  opened.wait();
  std::vector<sender> senders;
  double per_sender_rate = o.rate / static_cast<double>(conns.size());
  auto interval = static_cast<std::int64_t>(1e9 / per_sender_rate);
  for (std::size_t i = 0; i < conns.size(); ++i) {
    sender s;
    s.conn = conns[i].get();
    s.chat = conns[i]->chat;
    s.interval_ns = interval;
    s.next_ns = interval * static_cast<std::int64_t>(i) / static_cast<std::int64_t>(conns.size());
    s.slot = i;
    senders.push_back(std::move(s));
  }
  auto cap = static_cast<std::uint64_t>(per_sender_rate * (o.warmup + o.duration) * 1.5 + 10);
  auto sent = run_measured(f, std::move(senders), o, probe, r, cap);
  latency_samples ack_lat, deliver_lat;
  for (auto ns : collect_ack_latencies(f)) ack_lat.add(ns);
  for (auto& d2 : deliver) deliver_lat.merge(d2);
  auto totals = sum_counters(f);
  r.add("pairs", static_cast<double>(o.pairs));
  r.add("offered msgs/s", o.rate);
  r.add("sent", static_cast<double>(sent));
  r.add("acked ok", static_cast<double>(totals.send_ok));
  r.add("acked msgs/s (measured window)", static_cast<double>(ack_lat.count()) / o.duration);
  r.add("delivered msgs/s (measured window)",
        static_cast<double>(deliver_lat.count()) / o.duration);
  r.add("delivered (measured window)", static_cast<double>(deliver_lat.count()));
  r.add("errors", static_cast<double>(totals.send_err));
  r.add("rate_limited", static_cast<double>(totals.rate_limited));
  r.add("closed connections", static_cast<double>(totals.closes));
  r.latencies["send->ack"] = std::move(ack_lat);
  r.latencies["send->deliver"] = std::move(deliver_lat);
}

void scenario_group(const options& o, fleet& f, report& r, server_probe& probe) {
  auto accounts = load_accounts(o, o.groups * o.members);
  std::vector<latency_samples> deliver(f.threads()), last(f.threads());
  std::uint64_t cap = static_cast<std::uint64_t>(
      o.rate / static_cast<double>(o.groups * o.senders) * (o.warmup + o.duration) * 1.5 + 10);
  std::size_t total_numbers = o.groups * o.senders * cap;
  std::vector<std::atomic<std::uint32_t>> counts(total_numbers);
  const auto recipients = static_cast<std::uint32_t>(o.members - 1);
  auto handler = [&](connection& c, const msg_event& m) {
    std::int64_t scheduled;
    std::uint64_t number;
    if (!parse_text(m.text, scheduled, number) || number >= total_numbers) return;
    ack_now_and_then(c, m);
    if (!f.measuring(scheduled)) return;
    auto latency = steady_ns() - scheduled;
    deliver[c.thread].add(latency);
    // The last of the recipients to get it measures the message's fan-out.
    if (counts[number].fetch_add(1, std::memory_order_relaxed) + 1 == recipients)
      last[c.thread].add(latency);
  };
  auto ok = f.connect_all(accounts, handler);
  if (ok != accounts.size()) throw std::runtime_error("not every connection authenticated");
  auto& conns = f.connections();
  std::latch created(static_cast<std::ptrdiff_t>(o.groups));
  for (std::size_t g = 0; g < o.groups; ++g) {
    auto* creator = conns[g * o.members].get();
    std::string members;
    for (std::size_t m = 1; m < o.members; ++m) {
      if (m > 1) members += ",";
      members += "\"" + conns[g * o.members + m]->acct.user_id + "\"";
    }
    auto op = R"({"op":"group.create","title":"bench )" + std::to_string(g) + R"(","members":[)" +
              members + "]}";
    f.post(*creator, [&f, &conns, creator, op, g, &o, &created] {
      f.request(*creator, op, [&conns, g, &o, &created](std::string_view reply) {
        auto chat = std::string(json_string_field(reply, "chat"));
        if (chat.empty()) std::fprintf(stderr, "group.create failed: %.*s\n", static_cast<int>(reply.size()), reply.data());
        for (std::size_t m = 0; m < o.members; ++m) conns[g * o.members + m]->chat = chat;
        created.count_down();
      });
    });
  }
  created.wait();
  std::this_thread::sleep_for(500ms);  // the `created` system messages reach everyone
  std::vector<sender> senders;
  double per_sender_rate = o.rate / static_cast<double>(o.groups * o.senders);
  auto interval = static_cast<std::int64_t>(1e9 / per_sender_rate);
  std::size_t slot = 0;
  for (std::size_t g = 0; g < o.groups; ++g) {
    for (std::size_t s = 0; s < o.senders; ++s) {
      sender x;
      x.conn = conns[g * o.members + s].get();
      x.chat = x.conn->chat;
      x.interval_ns = interval;
      x.next_ns = interval * static_cast<std::int64_t>(slot) /
                  static_cast<std::int64_t>(o.groups * o.senders);
      x.slot = slot++;
      senders.push_back(std::move(x));
    }
  }
  auto sent = run_measured(f, std::move(senders), o, probe, r, cap);
  latency_samples deliver_lat, last_lat, ack_lat;
  for (auto& x : deliver) deliver_lat.merge(x);
  for (auto& x : last) last_lat.merge(x);
  for (auto ns : collect_ack_latencies(f)) ack_lat.add(ns);
  auto totals = sum_counters(f);
  r.add("groups x members", static_cast<double>(o.groups * o.members));
  r.add("offered msgs/s", o.rate);
  r.add("sent", static_cast<double>(sent));
  r.add("acked ok", static_cast<double>(totals.send_ok));
  r.add("deliveries (measured window)", static_cast<double>(deliver_lat.count()));
  r.add("deliveries/s", static_cast<double>(deliver_lat.count()) / o.duration);
  r.add("messages fully delivered", static_cast<double>(last_lat.count()));
  r.add("errors", static_cast<double>(totals.send_err));
  r.add("closed connections", static_cast<double>(totals.closes));
  r.latencies["send->ack"] = std::move(ack_lat);
  r.latencies["send->deliver"] = std::move(deliver_lat);
  r.latencies["send->last recipient"] = std::move(last_lat);
}

void scenario_reconnect(const options& o, fleet& f, report& r, server_probe& probe) {
  // Account 0 sends the backlog; accounts 1..devices reconnect.
  auto accounts = load_accounts(o, o.devices + 1);
  std::vector<account> sender_acct(accounts.begin(), accounts.begin() + 1);
  std::vector<account> devices(accounts.begin() + 1, accounts.end());
  if (f.connect_all(sender_acct, nullptr) != 1) throw std::runtime_error("sender failed to connect");
  auto* s = f.connections()[0].get();
  std::vector<std::string> chats(devices.size());
  {
    std::latch opened(static_cast<std::ptrdiff_t>(devices.size()));
    f.post(*s, [&] {
      for (std::size_t i = 0; i < devices.size(); ++i)
        f.request(*s, R"({"op":"chat.open","peer":")" + devices[i].user_id + "\"}",
                  [&chats, i, &opened](std::string_view reply) {
                    chats[i] = std::string(json_string_field(reply, "chat"));
                    opened.count_down();
                  });
    });
    opened.wait();
  }
  // The backlog, sent as fast as the server acks it.
  {
    std::latch sent(static_cast<std::ptrdiff_t>(devices.size() * o.backlog));
    f.post(*s, [&] {
      for (std::size_t i = 0; i < devices.size(); ++i)
        for (std::size_t k = 0; k < o.backlog; ++k)
          f.request(*s,
                    R"({"op":"send","chat":")" + chats[i] + R"(","cid":")" + run_tag() + "r" + std::to_string(i) +
                        "-" + std::to_string(k) + R"(","text":"backlog )" + std::to_string(k) + "\"}",
                    [&sent](std::string_view) { sent.count_down(); });
    });
    sent.wait();
  }
  probe.begin();
  auto t0 = steady_ns();
  auto ok = f.connect_all(devices, nullptr);
  auto total_s = static_cast<double>(steady_ns() - t0) / 1e9;
  probe.end(r, total_s);
  latency_samples to_synced;
  std::atomic<std::uint64_t> replayed{0};  // summed on the connections' threads at once
  f.for_each_blocking([&](connection& c) {
    if (c.index == 0 || !c.synced) return;
    replayed += c.msgs_before_synced;
  });
  for (auto& c : f.connections())
    if (c->index != 0 && c->synced) to_synced.add(c->synced_ns - c->connect_started_ns);
  r.add("devices", static_cast<double>(o.devices));
  r.add("backlog per device", static_cast<double>(o.backlog));
  r.add("devices synced", static_cast<double>(ok));
  r.add("messages replayed", static_cast<double>(replayed.load()));
  r.add("expected replayed", static_cast<double>(o.devices * o.backlog));
  r.add("seconds until all synced", total_s);
  r.latencies["connect->synced"] = std::move(to_synced);
}

}  // namespace
}  // namespace parley::bench

int main(int argc, char** argv) {
  using namespace parley::bench;
  std::optional<options> o;
  try {
    if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h"))
      return usage(0);
    o = parse(argc, argv);
    if (!o) return usage(2);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parley-bench: %s\n", e.what());
    return usage(2);
  }
  try {
    std::size_t conns = o->scenario == "idle"       ? o->connections
                        : o->scenario == "direct"   ? 2 * o->pairs
                        : o->scenario == "group"    ? o->groups * o->members
                        : o->scenario == "reconnect" ? o->devices + 1
                                                     : 0;
    if (conns == 0) throw std::runtime_error("unknown scenario '" + o->scenario + "'");
    if (o->source_addresses == 0 && conns > 20000) o->source_addresses = (conns + 19999) / 20000;
    fleet::options fo;
    fo.server.host = o->host;
    fo.server.port = o->port;
    fo.threads = o->threads;
    fo.source_addresses = o->source_addresses;
    fo.beast_client = o->beast_client;
    fleet f(fo);
    server_probe probe;
    probe.pid = o->server_pid ? o->server_pid : find_listener_pid(o->port);
    report r;
    r.scenario = o->scenario;
    r.closed_loop = o->closed_loop;
    if (o->beast_client) r.notes.push_back("generator: Beast's WebSocket client (--beast-client)");
    if (o->scenario == "idle") scenario_idle(*o, f, r, probe);
    if (o->scenario == "direct") scenario_direct(*o, f, r, probe);
    if (o->scenario == "group") scenario_group(*o, f, r, probe);
    if (o->scenario == "reconnect") scenario_reconnect(*o, f, r, probe);
    f.close_all();
    r.print(o->json, o->json_out);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parley-bench: %s\n", e.what());
    return 1;
  }
}
