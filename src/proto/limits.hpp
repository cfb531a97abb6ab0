// The argument limits of PROTOCOL §7 that the decoder enforces. Each is configurable.
#pragma once

#include <cstddef>

namespace parley::proto {

struct limits {
  std::size_t text_max_bytes = 16 * 1024;
  std::size_t id_max_bytes = 64;       // every id and cid
  std::size_t users_get_max = 100;     // users.get lists
  std::size_t group_members_max = 256;  // group.create members, group.add/remove users, admins
  std::size_t presence_sub_max = 1024;  // presence.sub users
  std::size_t title_max_chars = 100;    // group titles, in code points
  std::size_t token_max_bytes = 256;
  std::size_t media_name_max_bytes = 255;
  std::size_t mime_max_bytes = 127;
};

}  // namespace parley::proto
