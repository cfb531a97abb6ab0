// admission — connection-level limits against abuse (PROTOCOL §7, docs/security.md):
// how many connections may wait unauthenticated per source address, how many live
// connections one user may hold, and which browser origins may open a WebSocket.
//
// Counting is striped (a mutex per stripe), never one lock for the whole server; the counts
// change only when a connection opens, authenticates or closes, never per frame.
// Thread safety: every method may be called from any thread.
#pragma once

#include <array>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace parley::server {

// A map of counters, each at most `limit`.
class bounded_counters {
 public:
  // Adds one to `key` unless it already holds `limit`; 0 means unlimited.
  bool try_add(const std::string& key, unsigned limit) {
    auto& s = stripe_of(key);
    std::lock_guard lock(s.mutex);
    auto& n = s.counts[key];
    if (limit != 0 && n >= limit) {
      if (n == 0) s.counts.erase(key);
      return false;
    }
    ++n;
    return true;
  }
  void remove(const std::string& key) {
    auto& s = stripe_of(key);
    std::lock_guard lock(s.mutex);
    auto it = s.counts.find(key);
    if (it == s.counts.end()) return;
    if (--it->second == 0) s.counts.erase(it);
  }

 private:
  struct stripe {
    std::mutex mutex;
    std::unordered_map<std::string, unsigned> counts;
  };
  stripe& stripe_of(const std::string& key) {
    return stripes_[std::hash<std::string>{}(key) % stripes_.size()];
  }
  std::array<stripe, 32> stripes_;
};

struct admission_options {
  unsigned max_unauthenticated_per_ip = 256;  // 0: unlimited
  unsigned max_connections_per_user = 32;     // 0: unlimited
  // Exact `Origin` values allowed to open a WebSocket. Empty: same-origin only. A request
  // without Origin (not a browser) is always allowed: Origin protects browsers' users.
  std::vector<std::string> allowed_origins;
};

class admission {
 public:
  explicit admission(admission_options opts) : opts_(std::move(opts)) {}

  // Whether a WebSocket upgrade with these headers may proceed.
  bool origin_allowed(std::string_view origin, std::string_view host) const;

  bool try_open_unauthenticated(const std::string& ip) {
    return unauthenticated_.try_add(ip, opts_.max_unauthenticated_per_ip);
  }
  void close_unauthenticated(const std::string& ip) { unauthenticated_.remove(ip); }

  bool try_open_user(const std::string& user_id) {
    return users_.try_add(user_id, opts_.max_connections_per_user);
  }
  void close_user(const std::string& user_id) { users_.remove(user_id); }

 private:
  admission_options opts_;
  bounded_counters unauthenticated_;
  bounded_counters users_;
};

}  // namespace parley::server
