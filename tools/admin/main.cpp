// parley-admin — operator commands that work on a stopped server's data directory.
//
//   parley-admin provision --data-dir DIR --users N [--prefix P] [--password PW] [--start K]
//
// creates N users (P000000, P000001, ...) and one device session each, directly in the store,
// and prints `username<TAB>user_id<TAB>token` per user on stdout. It is for imports and load
// tests: the password is hashed with the same argon2id as registration, once, and that hash is
// stored for every user created by this run (they share the password; each can log in with it).
// parleyd must not be running on DIR (the store is locked by the running server).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "chat/store.hpp"
#include "store/rocksdb/rocksdb_store.hpp"
#include "util/clock.hpp"
#include "util/crypto.hpp"

namespace {

int usage(int code) {
  std::fputs(
      "usage: parley-admin provision --data-dir DIR --users N [--prefix P] [--password PW]\n"
      "                              [--start K]\n"
      "  creates users P<K>..P<K+N-1> (6-digit numbers) with one session each, directly in\n"
      "  DIR's store (parleyd must be stopped), and prints username, user_id and token per\n"
      "  line, tab-separated. Default prefix 'bench', password 'bench-password'.\n",
      code == 0 ? stdout : stderr);
  return code;
}


}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") return usage(args.empty() ? 2 : 0);
  if (args[0] != "provision") {
    std::fprintf(stderr, "parley-admin: unknown command '%s'\n", args[0].c_str());
    return usage(2);
  }
  std::string data_dir, prefix = "bench", password = "bench-password";
  long users = -1, start = 0;
  try {
    for (std::size_t i = 1; i < args.size(); ++i) {
      auto value = [&]() -> std::string {
        if (i + 1 >= args.size()) throw std::runtime_error(args[i] + " needs a value");
        return args[++i];
      };
      if (args[i] == "--data-dir") data_dir = value();
      else if (args[i] == "--users") users = std::stol(value());
      else if (args[i] == "--prefix") prefix = value();
      else if (args[i] == "--password") password = value();
      else if (args[i] == "--start") start = std::stol(value());
      else throw std::runtime_error("unknown option " + args[i]);
    }
    if (data_dir.empty() || users < 0) throw std::runtime_error("--data-dir and --users are required");
    if (password.size() < 8) throw std::runtime_error("--password needs at least 8 bytes");
    if (prefix.empty() || prefix.size() > 24) throw std::runtime_error("--prefix wants 1-24 characters");
    for (char c : prefix)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
        throw std::runtime_error("--prefix may hold only a-z 0-9 _ .");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parley-admin: %s\n", e.what());
    return usage(2);
  }

  try {
    parley::util::init_crypto();
    // Written to the OS as it goes, flushed once at the end: an import is restartable.
    parley::store::rocksdb_store db(data_dir + "/db", parley::store::durability::os);
    const auto hash = parley::util::hash_password(password);
    const auto now = parley::util::now_ms();
    for (long n = start; n < start + users; ++n) {
      char name[40];
      std::snprintf(name, sizeof name, "%s%06ld", prefix.c_str(), n);
      parley::chat::user_record u{parley::util::random_id('u'), name, name, hash, now};
      if (auto created = db.create_user(u); !created) {
        std::fprintf(stderr, "parley-admin: %s: %s\n", name, created.err().message.c_str());
        return 1;
      }
      auto token = parley::util::random_token();
      parley::chat::session_record s{parley::util::sha256_bytes(token), u.id, parley::util::random_id('v'),
                                     "provisioned", now};
      if (auto created = db.create_session(s, {}); !created) {
        std::fprintf(stderr, "parley-admin: session of %s: %s\n", name,
                     created.err().message.c_str());
        return 1;
      }
      std::cout << name << '\t' << u.id << '\t' << token << '\n';
    }
    if (auto flushed = db.flush(); !flushed) {
      std::fprintf(stderr, "parley-admin: flush: %s\n", flushed.err().message.c_str());
      return 1;
    }
    std::cout.flush();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parley-admin: %s\n", e.what());
    return 1;
  }
}
