#include "bench/stats.hpp"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

namespace parley::bench {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

process_sample sample_process(int pid) {
  process_sample out;
  if (pid <= 0) return out;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return out;
  // Fields after the command name (which may hold spaces) start after the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0, rss_pages = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
    if (i == 24) {
      rss_pages = std::stoll(field);
      break;
    }
  }
  static const long ticks = sysconf(_SC_CLK_TCK);
  static const long page = sysconf(_SC_PAGESIZE);
  out.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks);
  out.rss_bytes = rss_pages * page;
  out.ok = true;
  return out;
}

int find_listener_pid(std::uint16_t port) {
  // The socket inode listening on the port, then the process holding it.
  std::string inode;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, state, queues, tr, retr, uid, timeout, node;
      f >> sl >> local >> remote >> state >> queues >> tr >> retr >> uid >> timeout >> node;
      if (state != "0A") continue;  // LISTEN
      auto colon = local.rfind(':');
      if (colon == std::string::npos) continue;
      if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) {
        inode = node;
        break;
      }
    }
    if (!inode.empty()) break;
  }
  if (inode.empty()) return 0;
  std::string target = "socket:[" + inode + "]";
  DIR* proc = opendir("/proc");
  if (!proc) return 0;
  int found = 0;
  while (auto* e = readdir(proc)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::string fd_dir = "/proc/" + std::string(e->d_name) + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (!fds) continue;
    while (auto* f = readdir(fds)) {
      char link[256];
      auto n = readlink((fd_dir + "/" + f->d_name).c_str(), link, sizeof link - 1);
      if (n > 0 && std::string(link, n) == target) {
        found = pid;
        break;
      }
    }
    closedir(fds);
    if (found) break;
  }
  closedir(proc);
  return found;
}

}  // namespace parley::bench
