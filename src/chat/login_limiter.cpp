#include "chat/login_limiter.hpp"

#include "util/clock.hpp"

namespace parley::chat {

login_limiter::attempt::~attempt() {
  try {
    limiter_.end_attempt(username_, failed_, util::now_ms());
  } catch (...) {  // out of memory: the attempt stays counted until its window ends
  }
}

void login_limiter::prune(entry& e, time_ms now) const {
  while (!e.failures.empty() && e.failures.front() <= now - window_ms_) e.failures.pop_front();
}

time_ms login_limiter::begin_attempt(std::string_view username, time_ms now) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = entries_.try_emplace(std::string(username));
  auto& e = it->second;
  prune(e, now);
  if (e.failures.size() + e.in_flight >= max_failures_) {
    // Free when the oldest failure leaves the window, or soon if attempts in flight fill it.
    time_ms wait = e.failures.size() >= max_failures_ ? e.failures.front() + window_ms_ - now
                                                      : kInFlightRetryMs;
    if (inserted) entries_.erase(it);  // (only with max_failures 0)
    return wait;
  }
  ++e.in_flight;
  if (!inserted) by_age_.erase(e.age);
  by_age_.push_back(it->first);
  e.age = std::prev(by_age_.end());
  // Forget the oldest usernames, but never one with an attempt in flight (its outcome would
  // be lost, or land on a newer entry of the same name).
  for (auto old = by_age_.begin(); entries_.size() > max_tracked_ && old != by_age_.end();) {
    auto entry = entries_.find(*old);
    if (entry->second.in_flight > 0) {
      ++old;
      continue;
    }
    entries_.erase(entry);
    old = by_age_.erase(old);
  }
  return 0;
}

void login_limiter::end_attempt(std::string_view username, bool failed, time_ms now) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(std::string(username));
  if (it == entries_.end()) return;  // forgotten meanwhile (max_tracked)
  auto& e = it->second;
  if (e.in_flight > 0) --e.in_flight;
  prune(e, now);
  if (failed) {
    e.failures.push_back(now);
    // Only the last max_failures failures matter to begin_attempt().
    while (e.failures.size() > max_failures_) e.failures.pop_front();
  } else if (e.failures.empty() && e.in_flight == 0) {
    by_age_.erase(e.age);  // nothing to remember
    entries_.erase(it);
  }
}

}  // namespace parley::chat
