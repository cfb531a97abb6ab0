#include "chat/login_limiter.hpp"

namespace parley::chat {

void login_limiter::prune(entry& e, time_ms now) const {
  while (!e.failures.empty() && e.failures.front() <= now - window_ms_) e.failures.pop_front();
}

time_ms login_limiter::blocked_for(std::string_view username, time_ms now) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(std::string(username));
  if (it == entries_.end()) return 0;
  auto& failures = it->second.failures;
  prune(it->second, now);
  if (failures.size() < max_failures_) return 0;
  // Free again when the oldest counted failure leaves the window.
  return failures.front() + window_ms_ - now;
}

void login_limiter::record_failure(std::string_view username, time_ms now) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = entries_.try_emplace(std::string(username));
  auto& e = it->second;
  if (!inserted) by_age_.erase(e.age);
  by_age_.push_back(it->first);
  e.age = std::prev(by_age_.end());
  prune(e, now);
  e.failures.push_back(now);
  // Only the last max_failures failures matter to blocked_for().
  while (e.failures.size() > max_failures_) e.failures.pop_front();
  while (entries_.size() > max_tracked_) {
    entries_.erase(by_age_.front());
    by_age_.pop_front();
  }
}

}  // namespace parley::chat
