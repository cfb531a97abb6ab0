// Leveled logging to stderr. Depends on nothing of ours.
//
// Thread safety: every function may be called from any thread; one line is written with one
// write(2), so lines from different threads never interleave.
#pragma once

#include <fmt/format.h>
#include <string_view>

namespace parley::util {

enum class log_level { debug = 0, info = 1, warn = 2, error = 3 };

void set_log_level(log_level level);
log_level current_log_level();
// Parses "debug", "info", "warn", "error"; returns false on anything else.
bool parse_log_level(std::string_view text, log_level& out);
void write_log(log_level level, std::string_view message);

template <class... Args>
void log(log_level level, fmt::format_string<Args...> pattern, Args&&... args) {
  if (level < current_log_level()) return;
  write_log(level, fmt::format(pattern, std::forward<Args>(args)...));
}

#define PARLEY_LOG_FN(name, level)                                        \
  template <class... Args>                                                \
  void name(fmt::format_string<Args...> pattern, Args&&... args) {            \
    log(log_level::level, pattern, std::forward<Args>(args)...);              \
  }
PARLEY_LOG_FN(log_debug, debug)
PARLEY_LOG_FN(log_info, info)
PARLEY_LOG_FN(log_warn, warn)
PARLEY_LOG_FN(log_error, error)
#undef PARLEY_LOG_FN

}  // namespace parley::util
