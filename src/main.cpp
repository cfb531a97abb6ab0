// parleyd: the Parley chat server.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "server/app.hpp"
#include "server/config.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = parley::server::parse_command_line(args);
  if (!parsed.cfg) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    if (parsed.exit_code != 0) std::fputc('\n', stderr);
    return parsed.exit_code;
  }
  try {
    return parley::server::run(*parsed.cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parleyd: %s\n", e.what());
    return 1;
  }
}
