// What a failed BOOST_ASSERT does in the builds that keep assertions (Debug, the ASan build, the
// fuzz targets; CMakeLists.txt defines BOOST_ENABLE_ASSERT_DEBUG_HANDLER, which leaves release
// builds untouched): print and abort like <cassert>, except for an assertion of a Boost release
// that is known to be wrong, which would otherwise turn valid input into a crash.
#include <boost/assert.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

// Boost.Beast before 1.86 asserts `n >= 5` when its HTTP parser re-enters a chunk header with
// the input seen so far; a chunked body that arrives in pieces ("0\r\n", then "\r\n") reaches
// it with 3 or 4 bytes, and the code that follows correctly asks for more. Found by fuzz_http
// (its corpus keeps the input: fuzz/corpus/http/chunked_last_chunk_split.http); fixed upstream
// in boostorg/beast#2861, which relaxes the assertion to exactly what we accept here.
bool known_wrong(std::string_view expr, std::string_view file) {
  return expr == "n >= 5" && file.ends_with("boost/beast/http/impl/basic_parser.ipp");
}

}  // namespace

namespace boost {

void assertion_failed_msg(char const* expr, char const* msg, char const* function,
                          char const* file, long line) {
  if (known_wrong(expr, file)) return;
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed%s%s\n", file, line, function, expr,
               msg ? ": " : ".", msg ? msg : "");
  std::fflush(stderr);
  std::abort();
}

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  assertion_failed_msg(expr, nullptr, function, file, line);
}

}  // namespace boost
