// login_limiter — refuses logins for a username after too many recent failures
// (PROTOCOL §2: 429 after 10 failed attempts within a minute; successes are not limited).
//
// An attempt counts from its start: until its outcome is known it holds a place among the
// username's failures, so that concurrent wrong passwords (each an argon2 hash long) cannot
// exceed the limit between the check and the record.
//
// Memory is bounded: at most `max_tracked` usernames are tracked (those with recent failures or
// attempts in flight); past that the oldest entry is forgotten (an attacker spraying names
// cannot grow the server).
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

  // 0 when `username` may try to log in at `now`, the attempt then being in flight until
  // end_attempt(); otherwise how long until it may try (its failures within the window ending
  // at `now`, plus its attempts in flight, reach max_failures).
  time_ms begin_attempt(std::string_view username, time_ms now);
  // The outcome of an attempt begun with begin_attempt() (a failure is counted at `now`).
  void end_attempt(std::string_view username, bool failed, time_ms now);

  // How long a client waits when only attempts still in flight fill the limit.
  static constexpr time_ms kInFlightRetryMs = 1000;

  // Ends an attempt that begin_attempt() let in when it goes out of scope (at util::now_ms()),
  // as a failure if failed() was called: whatever path a login takes, its place is given back.
  class attempt {
   public:
    attempt(login_limiter& limiter, std::string_view username)
        : limiter_(limiter), username_(username) {}
    ~attempt();
    attempt(const attempt&) = delete;
    attempt& operator=(const attempt&) = delete;
    void failed() { failed_ = true; }

   private:
    login_limiter& limiter_;
    std::string_view username_;  // the caller's, which outlives the attempt
    bool failed_ = false;
  };

 private:
  struct entry {
    std::deque<time_ms> failures;
    unsigned in_flight = 0;
    std::list<std::string>::iterator age;
  };
  void prune(entry& e, time_ms now) const;

  unsigned max_failures_;
  time_ms window_ms_;
  std::size_t max_tracked_;
  std::mutex mutex_;
  std::unordered_map<std::string, entry> entries_;
  std::list<std::string> by_age_;  // least recently failed or begun first
};

}  // namespace parley::chat
