#include "server/web_assets.hpp"

namespace parley::server {

const web_asset* find_web_asset(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (const auto* a = k_web_assets; a->path; ++a)
    if (path == a->path) return a;
  return nullptr;
}

std::string_view content_type_for(std::string_view path) {
  auto dot = path.rfind('.');
  auto ext = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json" || ext == "webmanifest") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "woff2") return "font/woff2";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

}  // namespace parley::server
