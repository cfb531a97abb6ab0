#include "util/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>

namespace parley::util {
namespace {
std::atomic<log_level> g_level{log_level::info};

const char* level_name(log_level level) {
  switch (level) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
  }
  return "?";
}
}  // namespace

void set_log_level(log_level level) { g_level.store(level, std::memory_order_relaxed); }
log_level current_log_level() { return g_level.load(std::memory_order_relaxed); }

bool parse_log_level(std::string_view text, log_level& out) {
  for (auto level : {log_level::debug, log_level::info, log_level::warn, log_level::error}) {
    if (text == level_name(level)) {
      out = level;
      return true;
    }
  }
  return false;
}

void write_log(log_level level, std::string_view message) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::time_t seconds = system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  std::string line = fmt::format("{}.{:03d}Z {:5} {}\n", stamp, static_cast<int>(ms),
                                 level_name(level), message);
  // One write(2) per line so concurrent loggers never interleave; a short write is not retried
  // because a log line is not worth blocking for.
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace parley::util
