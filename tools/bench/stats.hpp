// Measurements of the load generator: latency samples with percentiles, and a server
// process's CPU time and resident memory read from /proc/<pid>.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace parley::bench {

// Latency samples in nanoseconds. One per thread (no locks); merged at the end.
class latency_samples {
 public:
  void add(std::int64_t ns) { samples_.push_back(ns < 0 ? 0 : ns); }
  void merge(const latency_samples& other) {
    samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
  }
  std::size_t count() const { return samples_.size(); }
  // The q-quantile (0..1) in microseconds; sorts on first use after a change.
  double quantile_us(double q) {
    if (samples_.empty()) return 0;
    if (!sorted_) {
      std::sort(samples_.begin(), samples_.end());
      sorted_ = true;
    }
    auto at = static_cast<std::size_t>(q * static_cast<double>(samples_.size() - 1) + 0.5);
    return static_cast<double>(samples_[std::min(at, samples_.size() - 1)]) / 1000.0;
  }
  void reserve(std::size_t n) { samples_.reserve(n); }

 private:
  std::vector<std::int64_t> samples_;
  bool sorted_ = false;
};

struct process_sample {
  bool ok = false;
  double cpu_seconds = 0;   // user + system
  std::int64_t rss_bytes = 0;
};

process_sample sample_process(int pid);
// The pid of the process listening on `port` on this machine, or 0.
int find_listener_pid(std::uint16_t port);

std::int64_t steady_ns();

}  // namespace parley::bench
