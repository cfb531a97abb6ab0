#include "store/memory/memory_store.hpp"

#include <gtest/gtest.h>

#include "store/testing/store_conformance.hpp"

namespace parley::store {
namespace {

struct memory_factory {
  std::unique_ptr<chat::store> make() { return std::make_unique<memory_store>(); }
};

}  // namespace

namespace testing {
INSTANTIATE_TYPED_TEST_SUITE_P(memory, store_conformance, ::testing::Types<memory_factory>);
}  // namespace testing

namespace {

TEST(memory_store, failed_writes_change_nothing_and_reads_keep_working) {
  memory_store s;
  ASSERT_TRUE(s.create_user(testing::make_user("u1", "alice")).ok());
  s.fail_writes_for_test(true);

  auto user = s.create_user(testing::make_user("u2", "bob"));
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.err().code, chat::errc::unavailable);
  auto session =
      s.create_session({.token_hash = "t", .user_id = "u1", .device_id = "d1"}, {{"d1", "c1", 1}});
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.err().code, chat::errc::unavailable);
  auto batch = s.write({.messages = {testing::make_message("c1", 1)}});
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.err().code, chat::errc::unavailable);

  auto alice = s.find_user("u1");
  ASSERT_TRUE(alice.ok());
  EXPECT_TRUE(alice->has_value()) << "reads work while writes fail";
  auto bob = s.find_user_by_name("bob");
  ASSERT_TRUE(bob.ok());
  EXPECT_FALSE(bob->has_value());
  auto cursor = s.find_cursor("d1", "c1");
  ASSERT_TRUE(cursor.ok());
  EXPECT_FALSE(cursor->has_value());
  auto message = s.find_message("c1", 1);
  ASSERT_TRUE(message.ok());
  EXPECT_FALSE(message->has_value());

  s.fail_writes_for_test(false);
  EXPECT_TRUE(s.write({.messages = {testing::make_message("c1", 1)}}).ok());
  EXPECT_TRUE(s.create_user(testing::make_user("u2", "bob")).ok());
}

TEST(memory_store, failed_delete_keeps_the_session) {
  memory_store s;
  ASSERT_TRUE(s.create_session({.token_hash = "t", .user_id = "u1", .device_id = "d1"}, {}).ok());
  s.fail_writes_for_test(true);
  auto del = s.delete_session("t");
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.err().code, chat::errc::unavailable);
  auto found = s.find_session("t");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->has_value());
}

TEST(memory_store, visitor_may_call_back_into_the_store) {
  memory_store s;
  ASSERT_TRUE(s.write({.messages = {testing::make_message("c1", 1)}}).ok());
  int visits = 0;
  auto r = s.scan_messages("c1", 0, 10, false, [&](const chat::message_view& v) {
    ++visits;
    auto again = s.find_message("c1", v.seq);
    EXPECT_TRUE(again.ok() && again->has_value());
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(visits, 1);
}

}  // namespace
}  // namespace parley::store
