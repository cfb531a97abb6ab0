// login_limiter: failures per username within a window, attempts in flight counted until their
// outcome is known, and a bounded number of usernames tracked.
#include "chat/login_limiter.hpp"

#include <gtest/gtest.h>

#include "util/clock.hpp"

namespace parley::chat {
namespace {

TEST(login_limiter, refuses_after_max_failures_until_the_oldest_leaves_the_window) {
  login_limiter l(3, 60'000);
  for (time_ms t : {1000, 2000, 3000}) {
    ASSERT_EQ(l.begin_attempt("ann", t), 0);
    l.end_attempt("ann", true, t);
  }
  EXPECT_EQ(l.begin_attempt("ann", 4000), 57'000);  // the failure at 1000 leaves at 61 000
  EXPECT_EQ(l.begin_attempt("bob", 4000), 0) << "another username is not limited";
  l.end_attempt("bob", false, 4000);
  EXPECT_EQ(l.begin_attempt("ann", 61'000), 0);
}

TEST(login_limiter, attempts_in_flight_hold_their_place_so_concurrent_failures_stay_bounded) {
  login_limiter l(3, 60'000);
  l.end_attempt("ann", true, 0);  // an outcome without an attempt (forgotten) is ignored
  ASSERT_EQ(l.begin_attempt("ann", 1000), 0);
  l.end_attempt("ann", true, 1000);
  // Two more may be in flight at once; a third waits for one of them.
  ASSERT_EQ(l.begin_attempt("ann", 2000), 0);
  ASSERT_EQ(l.begin_attempt("ann", 2000), 0);
  EXPECT_EQ(l.begin_attempt("ann", 2000), login_limiter::kInFlightRetryMs);
  l.end_attempt("ann", false, 2100);  // a success frees its place
  ASSERT_EQ(l.begin_attempt("ann", 2200), 0);
  l.end_attempt("ann", true, 2300);
  l.end_attempt("ann", true, 2300);
  EXPECT_EQ(l.begin_attempt("ann", 2400), 58'600) << "three failures in all, never more";
}

TEST(login_limiter, successes_leave_nothing_behind_and_names_are_bounded) {
  login_limiter l(2, 60'000, /*max_tracked=*/3);
  for (int i = 0; i < 10; ++i) {
    auto name = "user" + std::to_string(i);
    ASSERT_EQ(l.begin_attempt(name, 1000), 0);
    l.end_attempt(name, true, 1000);
    ASSERT_EQ(l.begin_attempt(name, 1000), 0);
    l.end_attempt(name, true, 1000);
  }
  // Only the last three names are remembered (blocked); the first ones were forgotten.
  EXPECT_GT(l.begin_attempt("user9", 2000), 0);
  EXPECT_EQ(l.begin_attempt("user0", 2000), 0);
}

TEST(login_limiter, an_attempt_ends_with_its_scope_as_a_failure_only_if_it_failed) {
  login_limiter l(1, 60'000);
  ASSERT_EQ(l.begin_attempt("ann", util::now_ms()), 0);
  { login_limiter::attempt ok(l, "ann"); }
  ASSERT_EQ(l.begin_attempt("ann", util::now_ms()), 0) << "a success gives its place back";
  {
    login_limiter::attempt bad(l, "ann");
    bad.failed();
  }
  EXPECT_GT(l.begin_attempt("ann", util::now_ms()), 0) << "the failure is counted";
}

TEST(login_limiter, a_name_with_an_attempt_in_flight_is_not_forgotten) {
  login_limiter l(1, 60'000, /*max_tracked=*/2);
  ASSERT_EQ(l.begin_attempt("ann", 1000), 0);  // in flight while others come and go
  for (int i = 0; i < 5; ++i) {
    auto name = "user" + std::to_string(i);
    ASSERT_EQ(l.begin_attempt(name, 1000), 0);
    l.end_attempt(name, true, 1000);
  }
  l.end_attempt("ann", true, 1100);
  EXPECT_GT(l.begin_attempt("ann", 1200), 0) << "ann's failure was counted";
}

}  // namespace
}  // namespace parley::chat
