// The web client's files (web/), compiled into parleyd so that the one binary serves the whole
// product. Generated at build time by cmake/embed_files.cmake.
#pragma once

#include <cstddef>
#include <string_view>

namespace parley::server {

struct web_asset {
  const char* path;  // "/index.html"; null ends the table
  const unsigned char* data;
  std::size_t size;
};

// Ends with an entry whose path is null.
extern const web_asset k_web_assets[];

// The asset at `path` ("/" means "/index.html"), or null.
const web_asset* find_web_asset(std::string_view path);
// The Content-Type for a file name, by extension.
std::string_view content_type_for(std::string_view path);

}  // namespace parley::server
