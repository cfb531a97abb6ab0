// Wall-clock time in the protocol's unit: milliseconds since the Unix epoch.
#pragma once

#include <chrono>
#include <cstdint>

namespace parley::util {

inline std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace parley::util
