// login_limiter — refuses logins for a username after too many recent failures
// (PROTOCOL §2: 429 after 10 failed attempts within a minute; successes are not limited).
//
// Memory is bounded: at most `max_tracked` usernames are tracked; past that the oldest entry
// is forgotten (an attacker spraying names cannot grow the server).
// Thread safety: all methods may be called from any thread (one mutex; logins are rare and
// already cost an argon2 hash).
#pragma once

#include <cstddef>
#include <deque>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "chat/types.hpp"

namespace parley::chat {

class login_limiter {
 public:
  login_limiter(unsigned max_failures, time_ms window_ms, std::size_t max_tracked = 100000)
      : max_failures_(max_failures), window_ms_(window_ms), max_tracked_(max_tracked) {}

  // 0 when `username` may try to log in at `now`; otherwise how long until it may (it has
  // max_failures failures within the window ending at `now`).
  time_ms blocked_for(std::string_view username, time_ms now);
  void record_failure(std::string_view username, time_ms now);

 private:
  struct entry {
    std::deque<time_ms> failures;
    std::list<std::string>::iterator age;
  };
  void prune(entry& e, time_ms now) const;

  unsigned max_failures_;
  time_ms window_ms_;
  std::size_t max_tracked_;
  std::mutex mutex_;
  std::unordered_map<std::string, entry> entries_;
  std::list<std::string> by_age_;  // least recently failed first
};

}  // namespace parley::chat
