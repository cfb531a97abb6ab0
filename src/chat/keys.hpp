// Keys of the domain's in-memory maps: two ids joined by NUL, which no id contains (ids are
// validated by proto to hold no NUL), so distinct pairs never make the same key.
#pragma once

#include <string>
#include <string_view>

namespace parley::chat {

inline std::string pair_key(std::string_view a, std::string_view b) {
  std::string key;
  key.reserve(a.size() + 1 + b.size());
  key.append(a).push_back('\0');
  key.append(b);
  return key;
}

}  // namespace parley::chat
