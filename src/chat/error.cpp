#include "chat/error.hpp"

namespace parley::chat {

std::string_view to_code(errc code) {
  switch (code) {
    case errc::bad_request: return "bad_request";
    case errc::unauthenticated: return "unauthenticated";
    case errc::forbidden: return "forbidden";
    case errc::not_found: return "not_found";
    case errc::conflict: return "conflict";
    case errc::too_large: return "too_large";
    case errc::rate_limited: return "rate_limited";
    case errc::unavailable: return "unavailable";
    case errc::internal: return "internal";
    case errc::unsupported_type: return "bad_request";
  }
  return "internal";
}

}  // namespace parley::chat
