// recent_senders: the senders of a chat's latest seqs, as a ring that forgets the oldest,
// restarts on a gap and is cut back when a batch is undone.
#include "chat/recent_senders.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace parley::chat {
namespace {

std::set<std::string> senders(const recent_senders& r, seq_t from, seq_t to) {
  std::set<std::string> out;
  r.for_each_sender(from, to, [&](std::string_view user) {
    EXPECT_TRUE(out.emplace(user).second) << "named twice: " << user;
  });
  return out;
}

using names = std::set<std::string>;

TEST(recent_senders, knows_nothing_at_first) {
  recent_senders r;
  EXPECT_EQ(r.first(), 0u);
  EXPECT_EQ(r.last(), 0u);
  EXPECT_EQ(senders(r, 1, 100), names{});
}

TEST(recent_senders, names_each_distinct_sender_of_a_range_once_and_skips_system_messages) {
  recent_senders r;
  r.append(5, "ann", false);
  r.append(6, "bob", false);
  r.append(7, "ann", false);
  r.append(8, "sys-actor", true);
  r.append(9, "cat", false);
  EXPECT_EQ(r.first(), 5u);
  EXPECT_EQ(r.last(), 9u);
  EXPECT_EQ(senders(r, 5, 9), (names{"ann", "bob", "cat"}));
  EXPECT_EQ(senders(r, 7, 8), names{"ann"});
  EXPECT_EQ(senders(r, 8, 8), names{});
  EXPECT_EQ(senders(r, 1, 6), (names{"ann", "bob"}));      // clipped to what it knows
  EXPECT_EQ(senders(r, 9, 1000), names{"cat"});
  EXPECT_EQ(senders(r, 10, 20), names{});
}

TEST(recent_senders, forgets_the_oldest_seqs_past_its_capacity) {
  recent_senders r;
  const seq_t n = recent_senders::min_capacity * 3 + 7;
  for (seq_t s = 1; s <= n; ++s) r.append(s, "u" + std::to_string(s % 5), false);
  EXPECT_EQ(r.last(), n);
  EXPECT_EQ(r.first(), n - recent_senders::min_capacity + 1);
  EXPECT_EQ(senders(r, n, n), names{"u" + std::to_string(n % 5)});
  EXPECT_EQ(senders(r, n - 1, n), (names{"u" + std::to_string(n % 5),
                                         "u" + std::to_string((n - 1) % 5)}));
  EXPECT_EQ(senders(r, 1, n).size(), 5u);
}

TEST(recent_senders, a_gap_starts_the_run_anew) {
  recent_senders r;
  r.append(1, "ann", false);
  r.append(2, "bob", false);
  r.append(10, "cat", false);
  EXPECT_EQ(r.first(), 10u);
  EXPECT_EQ(senders(r, 1, 10), names{"cat"});
}

TEST(recent_senders, truncate_forgets_the_undone_seqs_which_can_be_given_again) {
  recent_senders r;
  for (seq_t s = 1; s <= 10; ++s) r.append(s, s <= 5 ? "ann" : "bob", false);
  r.truncate(5);
  EXPECT_EQ(r.last(), 5u);
  EXPECT_EQ(senders(r, 1, 10), names{"ann"});
  r.append(6, "cat", false);
  EXPECT_EQ(senders(r, 6, 6), names{"cat"});
  r.truncate(20);  // nothing above 20: unchanged
  EXPECT_EQ(r.last(), 6u);
  r.truncate(0);
  EXPECT_EQ(r.first(), 0u);
  r.append(1, "dan", false);
  EXPECT_EQ(senders(r, 1, 1), names{"dan"});
}

TEST(recent_senders, truncate_works_once_the_ring_has_wrapped) {
  recent_senders r;
  const seq_t n = recent_senders::min_capacity + 50;
  for (seq_t s = 1; s <= n; ++s) r.append(s, "old", false);
  r.truncate(n - 10);
  for (seq_t s = n - 9; s <= n + 20; ++s) r.append(s, "new", false);
  EXPECT_EQ(r.last(), n + 20);
  EXPECT_EQ(r.first(), n + 20 - recent_senders::min_capacity + 1);
  EXPECT_EQ(senders(r, n - 10, n - 10), names{"old"});
  EXPECT_EQ(senders(r, n - 9, n + 20), names{"new"});
}

TEST(recent_senders, grows_to_keep_more_seqs_even_once_wrapped) {
  recent_senders r;
  const seq_t n = recent_senders::min_capacity + 40;
  for (seq_t s = 1; s <= n; ++s) r.append(s, "u" + std::to_string(s), false);
  ASSERT_EQ(r.first(), n - recent_senders::min_capacity + 1);
  r.grow_to(recent_senders::capacity_for(256));
  EXPECT_EQ(r.capacity(), recent_senders::max_capacity);
  r.grow_to(recent_senders::min_capacity);  // never shrinks
  EXPECT_EQ(r.capacity(), recent_senders::max_capacity);
  EXPECT_EQ(senders(r, n - 2, n), (names{"u" + std::to_string(n - 2), "u" + std::to_string(n - 1),
                                         "u" + std::to_string(n)}));
  const seq_t m = n + recent_senders::max_capacity;
  for (seq_t s = n + 1; s <= m; ++s) r.append(s, "u" + std::to_string(s % 3), false);
  EXPECT_EQ(r.first(), m - recent_senders::max_capacity + 1);
  EXPECT_EQ(r.last(), m);
  EXPECT_EQ(senders(r, r.first(), r.first()), names{"u" + std::to_string(r.first() % 3)});
}

TEST(recent_senders, many_distinct_senders_are_renamed_without_mixing_them_up) {
  recent_senders r;
  // 1000 distinct senders through a ring of 128: the table of names is compacted several times.
  for (seq_t s = 1; s <= 1000; ++s) r.append(s, "user-" + std::to_string(s), s % 7 == 0);
  for (seq_t s = r.first(); s <= r.last(); ++s) {
    names want;
    if (s % 7 != 0) want.insert("user-" + std::to_string(s));
    EXPECT_EQ(senders(r, s, s), want) << "seq " << s;
  }
}

TEST(recent_senders, more_recent_senders_than_it_can_name_make_it_forget_rather_than_mix_up) {
  recent_senders r;
  r.grow_to(recent_senders::max_capacity);
  for (seq_t s = 1; s <= 600; ++s) r.append(s, "user-" + std::to_string(s), false);
  EXPECT_GT(r.first(), 1u);  // forgot the oldest when it ran out of names
  EXPECT_EQ(r.last(), 600u);
  for (seq_t s = r.first(); s <= r.last(); ++s)
    EXPECT_EQ(senders(r, s, s), names{"user-" + std::to_string(s)}) << "seq " << s;
}

}  // namespace
}  // namespace parley::chat
