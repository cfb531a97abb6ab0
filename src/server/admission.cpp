#include "server/admission.hpp"

#include <algorithm>

namespace parley::server {

bool admission::origin_allowed(std::string_view origin, std::string_view host) const {
  if (origin.empty()) return true;
  if (!opts_.allowed_origins.empty())
    return std::find(opts_.allowed_origins.begin(), opts_.allowed_origins.end(), origin) !=
           opts_.allowed_origins.end();
  // Same origin: the Origin's authority (after the scheme) is the Host the browser asked for.
  auto scheme_end = origin.find("://");
  if (scheme_end == std::string_view::npos) return false;
  auto scheme = origin.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return false;
  auto authority = origin.substr(scheme_end + 3);
  return !authority.empty() && authority == host;
}

}  // namespace parley::server
