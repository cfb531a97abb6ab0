// The conformance suite of the chat::store port: one typed GoogleTest suite that every store
// implementation instantiates, so that the domain can rely on the same behaviour from each.
//
// Usage, in an implementation's test file:
//   struct my_factory {
//     std::unique_ptr<parley::chat::store> make();  // a fresh, empty store
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(my_store, store_conformance, ::testing::Types<my_factory>);
//
// The fixture default-constructs one factory per test and destroys the store before the
// factory, so a factory may own resources (a temp dir, a server schema) that the store uses.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chat/store.hpp"

namespace parley::store::testing {

using chat::seq_t;

inline chat::user_record make_user(std::string id, std::string username) {
  return {.id = std::move(id),
          .username = std::move(username),
          .display_name = "Display \xc3\xa9",
          .password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA",
          .created = 1'700'000'000'000};
}

inline chat::message_record make_message(std::string chat_id, seq_t seq) {
  return {
      .chat_id = chat_id,
      .seq = seq,
      .ts = 1'700'000'000'000 + static_cast<chat::time_ms>(seq % 1'000'000),
      .from_user = "u-" + std::to_string(seq % 3),
      .from_device = "d-" + std::to_string(seq % 5),
      .kind = chat::message_kind::text,
      .encoded = R"({"type":"msg","chat":")" + chat_id + R"(","seq":)" + std::to_string(seq) + "}"};
}

inline chat::membership_record make_membership(std::string user_id, std::string chat_id,
                                               seq_t joined = 1) {
  return {.user_id = std::move(user_id),
          .chat_id = std::move(chat_id),
          .role = chat::member_role::member,
          .joined_seq = joined,
          .left_seq = 0,
          .read_seq = joined,
          .delivered_seq = joined + 1};
}

inline chat::dedup_record make_dedup(std::string user_id, std::string cid, std::string chat_id,
                                     seq_t seq) {
  chat::dedup_record d{.user_id = std::move(user_id),
                       .cid = std::move(cid),
                       .chat_id = std::move(chat_id),
                       .seq = seq,
                       .ts = 1'700'000'000'123};
  for (std::size_t i = 0; i < d.fingerprint.size(); ++i) {
    d.fingerprint[i] = static_cast<std::uint8_t>(i * 17 + seq);
  }
  return d;
}

// Field-by-field comparisons with readable failures (the records have no operator==).
inline void expect_same(const chat::user_record& a, const chat::user_record& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.username, b.username);
  EXPECT_EQ(a.display_name, b.display_name);
  EXPECT_EQ(a.password_hash, b.password_hash);
  EXPECT_EQ(a.created, b.created);
}
inline void expect_same(const chat::session_record& a, const chat::session_record& b) {
  EXPECT_EQ(a.token_hash, b.token_hash);
  EXPECT_EQ(a.user_id, b.user_id);
  EXPECT_EQ(a.device_id, b.device_id);
  EXPECT_EQ(a.device_name, b.device_name);
  EXPECT_EQ(a.created, b.created);
}
inline void expect_same(const chat::chat_record& a, const chat::chat_record& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.title, b.title);
  ASSERT_EQ(a.members.size(), b.members.size());
  for (std::size_t i = 0; i < a.members.size(); ++i) {
    EXPECT_EQ(a.members[i].user_id, b.members[i].user_id) << "member " << i;
    EXPECT_EQ(a.members[i].role, b.members[i].role) << "member " << i;
  }
  EXPECT_EQ(a.last_seq, b.last_seq);
  EXPECT_EQ(a.created, b.created);
}
inline void expect_same(const chat::membership_record& a, const chat::membership_record& b) {
  EXPECT_EQ(a.user_id, b.user_id);
  EXPECT_EQ(a.chat_id, b.chat_id);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.joined_seq, b.joined_seq);
  EXPECT_EQ(a.left_seq, b.left_seq);
  EXPECT_EQ(a.read_seq, b.read_seq);
  EXPECT_EQ(a.delivered_seq, b.delivered_seq);
}
inline void expect_same(const chat::message_record& a, const chat::message_record& b) {
  EXPECT_EQ(a.chat_id, b.chat_id);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.ts, b.ts);
  EXPECT_EQ(a.from_user, b.from_user);
  EXPECT_EQ(a.from_device, b.from_device);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.encoded, b.encoded);
}
inline void expect_same(const chat::dedup_record& a, const chat::dedup_record& b) {
  EXPECT_EQ(a.user_id, b.user_id);
  EXPECT_EQ(a.cid, b.cid);
  EXPECT_EQ(a.chat_id, b.chat_id);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.ts, b.ts);
  EXPECT_EQ(a.fingerprint, b.fingerprint);
}

template <class Factory>
class store_conformance : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = factory_.make();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override { store_.reset(); }

  chat::store& store() { return *store_; }

  void put(chat::write_batch batch) {
    auto s = store().write(batch);
    ASSERT_TRUE(s.ok()) << s.err().message;
  }
  void put_messages(const std::string& chat_id, const std::vector<seq_t>& seqs) {
    chat::write_batch batch;
    for (seq_t seq : seqs) batch.messages.push_back(make_message(chat_id, seq));
    put(std::move(batch));
  }
  // The seqs that scan_messages visits; the views are checked against make_message on the way.
  std::vector<seq_t> scan(const std::string& chat_id, seq_t from, seq_t to, bool descending,
                          std::size_t stop_after = std::numeric_limits<std::size_t>::max()) {
    std::vector<seq_t> seen;
    auto s = store().scan_messages(chat_id, from, to, descending, [&](const chat::message_view& v) {
      auto expected = make_message(chat_id, v.seq);
      EXPECT_EQ(v.ts, expected.ts);
      EXPECT_EQ(v.kind, expected.kind);
      EXPECT_EQ(v.from_user, expected.from_user);
      EXPECT_EQ(v.from_device, expected.from_device);
      EXPECT_EQ(v.encoded, expected.encoded);
      seen.push_back(v.seq);
      return seen.size() < stop_after;
    });
    EXPECT_TRUE(s.ok()) << s.err().message;
    return seen;
  }

  Factory factory_;
  std::unique_ptr<chat::store> store_;
};

TYPED_TEST_SUITE_P(store_conformance);

TYPED_TEST_P(store_conformance, health_and_flush_succeed) {
  EXPECT_TRUE(this->store().health().ok());
  EXPECT_TRUE(this->store().flush().ok());
  EXPECT_TRUE(this->store().write(chat::write_batch{}).ok()) << "an empty batch is a no-op";
}

TYPED_TEST_P(store_conformance, user_create_and_find) {
  auto& s = this->store();
  auto alice = make_user("u-alice", "alice");
  alice.password_hash = std::string("hash\0with\xffnul", 13);  // any bytes survive
  ASSERT_TRUE(s.create_user(alice).ok());
  ASSERT_TRUE(s.create_user(make_user("u-bob", "bob")).ok());

  auto by_id = s.find_user("u-alice");
  ASSERT_TRUE(by_id.ok());
  ASSERT_TRUE(by_id->has_value());
  expect_same(**by_id, alice);

  auto by_name = s.find_user_by_name("alice");
  ASSERT_TRUE(by_name.ok());
  ASSERT_TRUE(by_name->has_value());
  expect_same(**by_name, alice);

  auto missing = s.find_user("u-carol");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto missing_name = s.find_user_by_name("carol");
  ASSERT_TRUE(missing_name.ok());
  EXPECT_FALSE(missing_name->has_value());
  auto prefix_name = s.find_user_by_name("ali");
  ASSERT_TRUE(prefix_name.ok());
  EXPECT_FALSE(prefix_name->has_value());
}

TYPED_TEST_P(store_conformance, username_conflict) {
  auto& s = this->store();
  ASSERT_TRUE(s.create_user(make_user("u1", "alice")).ok());

  auto again = s.create_user(make_user("u2", "alice"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code, chat::errc::conflict);

  auto loser = s.find_user("u2");
  ASSERT_TRUE(loser.ok());
  EXPECT_FALSE(loser->has_value()) << "a refused user must not be half-written";
  auto winner = s.find_user_by_name("alice");
  ASSERT_TRUE(winner.ok() && winner->has_value());
  EXPECT_EQ((*winner)->id, "u1");
}

TYPED_TEST_P(store_conformance, user_id_conflict) {
  auto& s = this->store();
  ASSERT_TRUE(s.create_user(make_user("u1", "alice")).ok());
  auto again = s.create_user(make_user("u1", "bob"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code, chat::errc::conflict);
  auto bob = s.find_user_by_name("bob");
  ASSERT_TRUE(bob.ok());
  EXPECT_FALSE(bob->has_value());
  auto u1 = s.find_user("u1");
  ASSERT_TRUE(u1.ok() && u1->has_value());
  EXPECT_EQ((*u1)->username, "alice");
}

TYPED_TEST_P(store_conformance, concurrent_creation_of_one_username_has_one_winner) {
  auto& s = this->store();
  constexpr int k_threads = 8;
  std::atomic<int> ready{0};
  std::vector<int> outcome(k_threads, -1);  // 1 = ok, 0 = conflict, 2 = anything else
  std::vector<std::thread> threads;
  for (int i = 0; i < k_threads; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < k_threads) std::this_thread::yield();  // start together
      auto r = s.create_user(make_user("u" + std::to_string(i), "same-name"));
      outcome[i] = r.ok() ? 1 : (r.err().code == chat::errc::conflict ? 0 : 2);
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(std::count(outcome.begin(), outcome.end(), 1), 1);
  EXPECT_EQ(std::count(outcome.begin(), outcome.end(), 0), k_threads - 1);
  int winner = static_cast<int>(std::find(outcome.begin(), outcome.end(), 1) - outcome.begin());
  auto by_name = s.find_user_by_name("same-name");
  ASSERT_TRUE(by_name.ok() && by_name->has_value());
  EXPECT_EQ((*by_name)->id, "u" + std::to_string(winner));
  for (int i = 0; i < k_threads; ++i) {
    auto u = s.find_user("u" + std::to_string(i));
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u->has_value(), i == winner) << "u" << i;
  }
}

TYPED_TEST_P(store_conformance, session_create_find_delete_with_initial_cursors) {
  auto& s = this->store();
  chat::session_record session{.token_hash = std::string(32, '\0'),
                               .user_id = "u1",
                               .device_id = "dev-1",
                               .device_name = "phone",
                               .created = 42};
  for (int i = 0; i < 32; ++i) session.token_hash[i] = static_cast<char>(i * 8);  // raw bytes
  std::vector<chat::cursor_record> cursors{{"dev-1", "c1", 7}, {"dev-1", "c2", 0}};
  ASSERT_TRUE(s.create_session(session, cursors).ok());

  auto found = s.find_session(session.token_hash);
  ASSERT_TRUE(found.ok() && found->has_value());
  expect_same(**found, session);
  auto c1 = s.find_cursor("dev-1", "c1");
  ASSERT_TRUE(c1.ok() && c1->has_value());
  EXPECT_EQ(**c1, 7u);
  auto c2 = s.find_cursor("dev-1", "c2");
  ASSERT_TRUE(c2.ok() && c2->has_value());
  EXPECT_EQ(**c2, 0u);

  auto other = s.find_session(std::string(32, 'x'));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());

  // Another device's cursor, with a device id that extends this one's: it stays.
  chat::write_batch other_device;
  other_device.cursors.push_back({"dev-10", "c1", 3});
  ASSERT_TRUE(s.write(other_device).ok());

  ASSERT_TRUE(s.delete_session(session.token_hash).ok());
  auto gone = s.find_session(session.token_hash);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  for (const char* chat : {"c1", "c2"}) {
    auto cursor = s.find_cursor("dev-1", chat);
    ASSERT_TRUE(cursor.ok());
    EXPECT_FALSE(cursor->has_value()) << "the logged-out device's cursor of " << chat;
  }
  auto kept = s.find_cursor("dev-10", "c1");
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ(**kept, 3u);
  EXPECT_TRUE(s.delete_session(session.token_hash).ok()) << "deleting twice is not an error";

  // A session with no initial cursors is fine too.
  session.token_hash[0] = 'z';
  ASSERT_TRUE(s.create_session(session, {}).ok());
  auto again = s.find_session(session.token_hash);
  ASSERT_TRUE(again.ok() && again->has_value());
}

TYPED_TEST_P(store_conformance, chat_write_find_replace) {
  auto& s = this->store();
  chat::chat_record group{.id = "c-group",
                          .kind = chat::chat_kind::group,
                          .title = "Team \xe2\x9c\x93",
                          .members = {{"u3", chat::member_role::admin},
                                      {"u1", chat::member_role::member},
                                      {"u2", chat::member_role::member}},
                          .last_seq = 0,
                          .created = 1000};
  chat::chat_record direct{
      .id = "c-direct",
      .kind = chat::chat_kind::direct,
      .members = {{"u1", chat::member_role::member}, {"u2", chat::member_role::member}},
      .last_seq = 9,
      .created = 2000};
  this->put({.chats = {group, direct}});

  auto g = s.find_chat("c-group");
  ASSERT_TRUE(g.ok() && g->has_value());
  expect_same(**g, group);
  auto d = s.find_chat("c-direct");
  ASSERT_TRUE(d.ok() && d->has_value());
  expect_same(**d, direct);
  auto none = s.find_chat("c-none");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  group.last_seq = 12;
  group.members.pop_back();
  group.title = "";
  this->put({.chats = {group}});
  auto g2 = s.find_chat("c-group");
  ASSERT_TRUE(g2.ok() && g2->has_value());
  expect_same(**g2, group);

  // 256 members, the group limit, round-trip in order.
  chat::chat_record big{.id = "c-big", .kind = chat::chat_kind::group, .title = "big"};
  for (int i = 0; i < 256; ++i) {
    big.members.push_back({"user-" + std::to_string(i),
                           i % 7 ? chat::member_role::member : chat::member_role::admin});
  }
  this->put({.chats = {big}});
  auto b = s.find_chat("c-big");
  ASSERT_TRUE(b.ok() && b->has_value());
  expect_same(**b, big);
}

// Writers rewrite a chat's record only when its members or title change: the messages
// appended since tell its last seq (chat::store::find_chat).
TYPED_TEST_P(store_conformance, chat_last_seq_follows_the_messages_written_after_its_record) {
  auto& s = this->store();
  chat::chat_record direct{
      .id = "c-direct",
      .kind = chat::chat_kind::direct,
      .members = {{"u1", chat::member_role::member}, {"u2", chat::member_role::member}},
      .last_seq = 2,
      .created = 2000};
  // A neighbour whose id extends this one's, with higher seqs: not this chat's messages.
  chat::chat_record neighbour = direct;
  neighbour.id = "c-direct2";
  neighbour.last_seq = 0;
  this->put({.chats = {direct, neighbour},
             .messages = {make_message("c-direct", 1), make_message("c-direct", 2)}});
  auto found = s.find_chat("c-direct");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->last_seq, 2u);

  this->put({.messages = {make_message("c-direct", 3), make_message("c-direct", 4)}});
  this->put({.messages = {make_message("c-direct", 5), make_message("c-direct2", 300)}});
  found = s.find_chat("c-direct");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->last_seq, 5u);
  expect_same(**found, [&] {
    auto expected = direct;
    expected.last_seq = 5;
    return expected;
  }());
  auto other = s.find_chat("c-direct2");
  ASSERT_TRUE(other.ok() && other->has_value());
  EXPECT_EQ((*other)->last_seq, 300u);

  // A record written later with the then last seq (a member added, say) changes nothing.
  direct.last_seq = 5;
  direct.members.push_back({"u3", chat::member_role::member});
  this->put({.chats = {direct}, .messages = {make_message("c-direct", 6)}});
  found = s.find_chat("c-direct");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->last_seq, 6u);
  EXPECT_EQ((*found)->members.size(), 3u);
}

TYPED_TEST_P(store_conformance, memberships_in_chat_id_order_and_isolated_per_user) {
  auto& s = this->store();
  auto departed = make_membership("u1", "c10", 3);
  departed.left_seq = 8;
  departed.role = chat::member_role::admin;
  // Users whose ids are prefixes of each other, and chats whose ids sort differently by length
  // than by bytes ("c10" < "c2").
  this->put({.memberships = {make_membership("u1", "c2"), departed, make_membership("u1", "c1"),
                             make_membership("u10", "c1"), make_membership("u", "c5"),
                             make_membership("u1c", "1")}});

  auto u1 = s.memberships_of("u1");
  ASSERT_TRUE(u1.ok());
  ASSERT_EQ(u1->size(), 3u);
  EXPECT_EQ((*u1)[0].chat_id, "c1");
  EXPECT_EQ((*u1)[1].chat_id, "c10");
  EXPECT_EQ((*u1)[2].chat_id, "c2");
  expect_same((*u1)[1], departed);
  for (const auto& m : *u1) EXPECT_EQ(m.user_id, "u1");

  auto u10 = s.memberships_of("u10");
  ASSERT_TRUE(u10.ok());
  ASSERT_EQ(u10->size(), 1u);
  expect_same((*u10)[0], make_membership("u10", "c1"));

  auto u = s.memberships_of("u");
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->size(), 1u);
  EXPECT_EQ((*u)[0].chat_id, "c5");

  auto nobody = s.memberships_of("u2");
  ASSERT_TRUE(nobody.ok());
  EXPECT_TRUE(nobody->empty());

  auto one = s.find_membership("u1", "c10");
  ASSERT_TRUE(one.ok() && one->has_value());
  expect_same(**one, departed);
  // ("u1", "c1") and ("u1c", "1") must not be confused by a store that concatenates ids.
  auto joined = s.find_membership("u1c", "1");
  ASSERT_TRUE(joined.ok() && joined->has_value());
  EXPECT_EQ((*joined)->user_id, "u1c");
  auto none = s.find_membership("u1", "c3");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto none2 = s.find_membership("u2", "c1");
  ASSERT_TRUE(none2.ok());
  EXPECT_FALSE(none2->has_value());
}

TYPED_TEST_P(store_conformance, cursors_write_find_replace) {
  auto& s = this->store();
  this->put({.cursors = {{"d1", "c10", 5}, {"d1c", "10", 6}, {"d1", "c1", 7}}});
  auto a = s.find_cursor("d1", "c10");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ(**a, 5u);
  auto b = s.find_cursor("d1c", "10");
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ(**b, 6u);
  auto c = s.find_cursor("d1", "c1");
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ(**c, 7u);
  auto none = s.find_cursor("d2", "c1");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  this->put({.cursors = {{"d1", "c10", std::numeric_limits<seq_t>::max()}}});
  auto replaced = s.find_cursor("d1", "c10");
  ASSERT_TRUE(replaced.ok() && replaced->has_value());
  EXPECT_EQ(**replaced, std::numeric_limits<seq_t>::max());
}

inline chat::media_record make_media(std::string id, std::string owner) {
  return {.id = id,
          .owner = std::move(owner),
          .mime = "image/png",
          .size = 12'345,
          .sha256 = std::string(64, 'a'),
          .blob_key = "m/" + id,
          .created = 1'700'000'000'000};
}

TYPED_TEST_P(store_conformance, media_create_find_and_conflict) {
  auto& s = this->store();
  auto m = make_media("m1", "u1");
  ASSERT_TRUE(s.create_media(m).ok());
  auto again = s.create_media(make_media("m1", "u2"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code, chat::errc::conflict);
  auto found = s.find_media("m1");
  ASSERT_TRUE(found.ok() && found->has_value());
  const auto& f = **found;
  EXPECT_EQ(f.id, "m1");
  EXPECT_EQ(f.owner, "u1");  // the first one stays
  EXPECT_EQ(f.mime, "image/png");
  EXPECT_EQ(f.size, 12'345u);
  EXPECT_EQ(f.sha256, std::string(64, 'a'));
  EXPECT_EQ(f.blob_key, "m/m1");
  EXPECT_EQ(f.created, 1'700'000'000'000);
  auto missing = s.find_media("m2");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TYPED_TEST_P(store_conformance, media_links_are_listed_per_media_in_chat_order) {
  auto& s = this->store();
  ASSERT_TRUE(s.create_media(make_media("m1", "u1")).ok());
  ASSERT_TRUE(s.create_media(make_media("m1x", "u1")).ok());  // a media id prefixed by another
  chat::write_batch b;
  b.media_links.push_back({"m1", "c2"});
  b.media_links.push_back({"m1", "c1"});
  b.media_links.push_back({"m1", "c1"});  // linking twice keeps one link
  b.media_links.push_back({"m1x", "c9"});
  b.media_links.push_back({"m2", "c3"});  // links need no record (the writer checked it)
  ASSERT_TRUE(s.write(b).ok());
  auto chats = s.media_chats("m1", 100);
  ASSERT_TRUE(chats.ok());
  EXPECT_EQ(*chats, (std::vector<std::string>{"c1", "c2"}));
  auto limited = s.media_chats("m1", 1);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(*limited, (std::vector<std::string>{"c1"}));
  auto other = s.media_chats("m1x", 100);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, (std::vector<std::string>{"c9"}));
  auto none = s.media_chats("m3", 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_TRUE(*s.has_media_link("m1", "c2"));
  EXPECT_FALSE(*s.has_media_link("m1", "c9"));
  EXPECT_FALSE(*s.has_media_link("m1x", "c1"));
  EXPECT_FALSE(*s.has_media_link("m1", ""));  // the record's key is no link
  // The links do not hide or damage the record.
  auto found = s.find_media("m1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->owner, "u1");
}

TYPED_TEST_P(store_conformance, dedup_write_find_replace) {
  auto& s = this->store();
  auto first = make_dedup("u1", "cid-1", "c1", 10);
  auto prefixed = make_dedup("u1c", "id-1", "c2", 11);  // "u1"+"cid-1" == "u1c"+"id-1"
  this->put({.dedups = {first, prefixed}});
  auto a = s.find_dedup("u1", "cid-1");
  ASSERT_TRUE(a.ok() && a->has_value());
  expect_same(**a, first);
  auto b = s.find_dedup("u1c", "id-1");
  ASSERT_TRUE(b.ok() && b->has_value());
  expect_same(**b, prefixed);
  auto none = s.find_dedup("u2", "cid-1");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  auto second = make_dedup("u1", "cid-1", "c3", 99);
  this->put({.dedups = {second}});
  auto replaced = s.find_dedup("u1", "cid-1");
  ASSERT_TRUE(replaced.ok() && replaced->has_value());
  expect_same(**replaced, second);
}

TYPED_TEST_P(store_conformance, find_message) {
  auto& s = this->store();
  auto text = make_message("c1", 1);
  auto system = make_message("c1", 2);
  system.kind = chat::message_kind::system;
  system.from_device = "";
  auto media = make_message("c1", 3);
  media.kind = chat::message_kind::media;
  media.encoded = std::string(200'000, 'j');  // large frames are kept whole
  auto negative_ts = make_message("c1", 4);
  negative_ts.ts = -5;
  this->put({.messages = {text, system, media, negative_ts}});

  for (const auto& expected : {text, system, media, negative_ts}) {
    auto found = s.find_message("c1", expected.seq);
    ASSERT_TRUE(found.ok() && found->has_value()) << expected.seq;
    expect_same(**found, expected);
  }
  auto missing_seq = s.find_message("c1", 5);
  ASSERT_TRUE(missing_seq.ok());
  EXPECT_FALSE(missing_seq->has_value());
  auto missing_chat = s.find_message("c10", 1);
  ASSERT_TRUE(missing_chat.ok());
  EXPECT_FALSE(missing_chat->has_value());
}

TYPED_TEST_P(store_conformance, scan_ascending_descending_and_bounds) {
  this->put_messages("c1", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  constexpr seq_t k_max = std::numeric_limits<seq_t>::max();
  using seqs = std::vector<seq_t>;

  EXPECT_EQ(this->scan("c1", 1, 10, false), (seqs{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(this->scan("c1", 3, 7, false), (seqs{3, 4, 5, 6, 7}));
  EXPECT_EQ(this->scan("c1", 3, 7, true), (seqs{7, 6, 5, 4, 3}));
  EXPECT_EQ(this->scan("c1", 0, k_max, false), (seqs{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(this->scan("c1", 0, k_max, true), (seqs{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}));
  EXPECT_EQ(this->scan("c1", 5, 5, false), (seqs{5}));
  EXPECT_EQ(this->scan("c1", 5, 5, true), (seqs{5}));
  EXPECT_EQ(this->scan("c1", 8, k_max, false), (seqs{8, 9, 10}));
  EXPECT_EQ(this->scan("c1", 0, 2, true), (seqs{2, 1}));
  EXPECT_TRUE(this->scan("c1", 11, k_max, false).empty());
  EXPECT_TRUE(this->scan("c1", 11, k_max, true).empty());
  EXPECT_TRUE(this->scan("c1", 7, 3, false).empty()) << "from > to is an empty range";
  EXPECT_TRUE(this->scan("c1", 7, 3, true).empty());
  EXPECT_TRUE(this->scan("c-none", 0, k_max, false).empty());
  EXPECT_TRUE(this->scan("c-none", 0, k_max, true).empty());

  // Gaps in the log are skipped, not reported.
  this->put_messages("c2", {2, 4, 8, 16});
  EXPECT_EQ(this->scan("c2", 3, 15, false), (seqs{4, 8}));
  EXPECT_EQ(this->scan("c2", 3, 15, true), (seqs{8, 4}));
}

TYPED_TEST_P(store_conformance, scan_stops_when_visitor_returns_false) {
  this->put_messages("c1", {1, 2, 3, 4, 5, 6});
  using seqs = std::vector<seq_t>;
  EXPECT_EQ(this->scan("c1", 1, 6, false, 3), (seqs{1, 2, 3}));
  EXPECT_EQ(this->scan("c1", 1, 6, true, 2), (seqs{6, 5}));
  EXPECT_EQ(this->scan("c1", 1, 6, true, 1), (seqs{6}));
}

TYPED_TEST_P(store_conformance, scan_is_isolated_between_chats_with_prefix_ids) {
  // "c1" is a prefix of "c10" and "c1\x01"; "c" is a prefix of all.
  this->put_messages("c1", {1, 2, 3});
  this->put_messages("c10", {1, 2, 3, 4});
  this->put_messages("c", {1, 2});
  this->put_messages(std::string("c1\x01", 3), {5});
  this->put_messages(std::string("c1\0", 3), {6});
  constexpr seq_t k_max = std::numeric_limits<seq_t>::max();
  using seqs = std::vector<seq_t>;

  EXPECT_EQ(this->scan("c1", 0, k_max, false), (seqs{1, 2, 3}));
  EXPECT_EQ(this->scan("c1", 0, k_max, true), (seqs{3, 2, 1}));
  EXPECT_EQ(this->scan("c10", 0, k_max, false), (seqs{1, 2, 3, 4}));
  EXPECT_EQ(this->scan("c10", 0, k_max, true), (seqs{4, 3, 2, 1}));
  EXPECT_EQ(this->scan("c", 0, k_max, false), (seqs{1, 2}));
  EXPECT_EQ(this->scan("c", 0, k_max, true), (seqs{2, 1}));
  EXPECT_EQ(this->scan(std::string("c1\0", 3), 0, k_max, true), (seqs{6}));
  EXPECT_TRUE(this->scan("c2", 0, k_max, false).empty());
  EXPECT_TRUE(this->scan("c0", 0, k_max, true).empty());

  auto m = this->store().find_message("c10", 4);
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ((*m)->chat_id, "c10");
  auto none = this->store().find_message("c1", 4);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TYPED_TEST_P(store_conformance, scan_orders_by_seq_across_byte_boundaries) {
  constexpr seq_t k_max = std::numeric_limits<seq_t>::max();
  std::vector<seq_t> seqs{1,          2,          127,        128,           255,
                          256,        257,        511,        512,           65535,
                          65536,      65537,      16'777'216, 4'294'967'295, 4'294'967'296,
                          1ull << 40, 1ull << 56, k_max - 1,  k_max};
  auto shuffled = seqs;
  std::reverse(shuffled.begin(), shuffled.end());
  std::rotate(shuffled.begin(), shuffled.begin() + 7, shuffled.end());
  this->put_messages("c1", shuffled);

  EXPECT_EQ(this->scan("c1", 0, k_max, false), seqs);
  auto descending = seqs;
  std::reverse(descending.begin(), descending.end());
  EXPECT_EQ(this->scan("c1", 0, k_max, true), descending);
  EXPECT_EQ(this->scan("c1", 255, 65536, false),
            (std::vector<seq_t>{255, 256, 257, 511, 512, 65535, 65536}));
  EXPECT_EQ(this->scan("c1", 256, 65535, true), (std::vector<seq_t>{65535, 512, 511, 257, 256}));
  EXPECT_EQ(this->scan("c1", k_max, k_max, false), (std::vector<seq_t>{k_max}));
  EXPECT_EQ(this->scan("c1", k_max - 1, k_max, true), (std::vector<seq_t>{k_max, k_max - 1}));
}

TYPED_TEST_P(store_conformance, scan_views_are_usable_during_the_visit) {
  auto big = make_message("c1", 1);
  big.encoded = std::string(100'000, 'x');
  big.encoded.back() = 'y';
  this->put({.messages = {big, make_message("c1", 2)}});
  std::vector<std::string> copies;
  auto s = this->store().scan_messages("c1", 1, 2, false, [&](const chat::message_view& v) {
    copies.emplace_back(v.encoded);
    return true;
  });
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(copies.size(), 2u);
  EXPECT_EQ(copies[0], big.encoded);
  EXPECT_EQ(copies[1], make_message("c1", 2).encoded);
}

TYPED_TEST_P(store_conformance, write_applies_a_batch_of_every_kind) {
  auto& s = this->store();
  chat::write_batch batch;
  batch.chats.push_back({.id = "c1",
                         .kind = chat::chat_kind::group,
                         .title = "t",
                         .members = {{"u1", chat::member_role::admin}},
                         .last_seq = 2,
                         .created = 5});
  batch.memberships.push_back(make_membership("u1", "c1"));
  batch.messages.push_back(make_message("c1", 1));
  batch.messages.push_back(make_message("c1", 2));
  batch.dedups.push_back(make_dedup("u1", "cid", "c1", 2));
  batch.cursors.push_back({"d1", "c1", 2});
  ASSERT_FALSE(batch.empty());
  this->put(batch);

  auto c = s.find_chat("c1");
  ASSERT_TRUE(c.ok() && c->has_value());
  expect_same(**c, batch.chats[0]);
  auto m = s.find_membership("u1", "c1");
  ASSERT_TRUE(m.ok() && m->has_value());
  expect_same(**m, batch.memberships[0]);
  EXPECT_EQ(this->scan("c1", 0, 100, false), (std::vector<seq_t>{1, 2}));
  auto d = s.find_dedup("u1", "cid");
  ASSERT_TRUE(d.ok() && d->has_value());
  expect_same(**d, batch.dedups[0]);
  auto cur = s.find_cursor("d1", "c1");
  ASSERT_TRUE(cur.ok() && cur->has_value());
  EXPECT_EQ(**cur, 2u);
}

// A reader racing the writer never sees part of a batch: each batch writes message i and then
// (in a later vector) the cursor for i, and a reader that finds the message must find the cursor.
TYPED_TEST_P(store_conformance, write_is_all_or_nothing_for_concurrent_readers) {
  auto& s = this->store();
  constexpr seq_t k_batches = 150;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<int> checks{0};
  std::atomic<bool> started{false};
  std::thread reader([&] {
    started.store(true);
    for (;;) {
      bool last_pass = done.load();  // one full pass after the writer finished, at least
      for (seq_t i = 1; i <= k_batches; ++i) {
        // Read the cursor second: it is in the batch's last vector, so it is the likeliest part
        // to be missing if a store applied a batch piece by piece.
        auto m = s.find_message("c", i);
        if (!m.ok() || !m->has_value()) continue;
        auto c = s.find_cursor("d", "c" + std::to_string(i));
        if (!c.ok() || !c->has_value()) torn.fetch_add(1);
        checks.fetch_add(1);
      }
      if (last_pass) break;
    }
  });
  while (!started.load()) std::this_thread::yield();
  for (seq_t i = 1; i <= k_batches; ++i) {
    chat::write_batch batch;
    batch.messages.push_back(make_message("c", i));
    batch.memberships.push_back(make_membership("u", "c" + std::to_string(i)));
    batch.dedups.push_back(make_dedup("u", "cid" + std::to_string(i), "c", i));
    batch.cursors.push_back({"d", "c" + std::to_string(i), i});
    this->put(std::move(batch));
  }
  done.store(true);
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GE(checks.load(), static_cast<int>(k_batches));
}

TYPED_TEST_P(store_conformance, last_seen_is_kept_per_user_and_replaced) {
  auto& s = this->store();
  EXPECT_EQ(s.find_last_seen("u1").value(), std::nullopt);
  ASSERT_TRUE(s.set_last_seen("u1", 1000).ok());
  ASSERT_TRUE(s.set_last_seen("u10", 2000).ok());
  EXPECT_EQ(s.find_last_seen("u1").value(), 1000);
  ASSERT_TRUE(s.set_last_seen("u1", 3000).ok());
  EXPECT_EQ(s.find_last_seen("u1").value(), 3000);
  EXPECT_EQ(s.find_last_seen("u10").value(), 2000);
  EXPECT_EQ(s.find_last_seen("u").value(), std::nullopt);
}

TYPED_TEST_P(store_conformance, records_with_the_same_key_are_replaced) {
  auto& s = this->store();
  auto first = make_message("c1", 1);
  auto second = make_message("c1", 1);
  second.encoded = R"({"replaced":true})";
  second.from_device = "";
  second.kind = chat::message_kind::system;
  auto m1 = make_membership("u1", "c1");
  auto m2 = make_membership("u1", "c1", 5);
  m2.left_seq = 9;
  this->put({.memberships = {m1}, .messages = {first}, .cursors = {{"d1", "c1", 1}}});
  this->put({.memberships = {m2}, .messages = {second}, .cursors = {{"d1", "c1", 4}}});

  auto msg = s.find_message("c1", 1);
  ASSERT_TRUE(msg.ok() && msg->has_value());
  expect_same(**msg, second);
  int visits = 0;
  auto scanned = s.scan_messages("c1", 0, 10, false, [&](const chat::message_view& v) {
    ++visits;
    EXPECT_EQ(v.encoded, second.encoded);
    EXPECT_EQ(v.from_device, "");
    return true;
  });
  ASSERT_TRUE(scanned.ok());
  EXPECT_EQ(visits, 1);
  auto mem = s.memberships_of("u1");
  ASSERT_TRUE(mem.ok());
  ASSERT_EQ(mem->size(), 1u);
  expect_same((*mem)[0], m2);
  auto cur = s.find_cursor("d1", "c1");
  ASSERT_TRUE(cur.ok() && cur->has_value());
  EXPECT_EQ(**cur, 4u);

  // Within one batch the later record wins, as if the vectors were applied in order.
  this->put({.cursors = {{"d1", "c1", 10}, {"d1", "c1", 11}}});
  auto last = s.find_cursor("d1", "c1");
  ASSERT_TRUE(last.ok() && last->has_value());
  EXPECT_EQ(**last, 11u);

  // create_session replaces a session and cursors with the same keys.
  chat::session_record session{
      .token_hash = std::string(32, 't'), .user_id = "u1", .device_id = "d1"};
  ASSERT_TRUE(s.create_session(session, {{"d1", "c1", 20}}).ok());
  session.device_name = "renamed";
  ASSERT_TRUE(s.create_session(session, {{"d1", "c1", 21}}).ok());
  auto found = s.find_session(session.token_hash);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->device_name, "renamed");
  auto cursor = s.find_cursor("d1", "c1");
  ASSERT_TRUE(cursor.ok() && cursor->has_value());
  EXPECT_EQ(**cursor, 21u);
}

REGISTER_TYPED_TEST_SUITE_P(
    store_conformance, health_and_flush_succeed, last_seen_is_kept_per_user_and_replaced, user_create_and_find, username_conflict,
    user_id_conflict, concurrent_creation_of_one_username_has_one_winner,
    session_create_find_delete_with_initial_cursors, chat_write_find_replace,
    chat_last_seq_follows_the_messages_written_after_its_record,
    memberships_in_chat_id_order_and_isolated_per_user, cursors_write_find_replace,
    dedup_write_find_replace, find_message, scan_ascending_descending_and_bounds,
    scan_stops_when_visitor_returns_false, scan_is_isolated_between_chats_with_prefix_ids,
    scan_orders_by_seq_across_byte_boundaries, scan_views_are_usable_during_the_visit,
    write_applies_a_batch_of_every_kind, write_is_all_or_nothing_for_concurrent_readers,
    records_with_the_same_key_are_replaced, media_create_find_and_conflict,
    media_links_are_listed_per_media_in_chat_order);

}  // namespace parley::store::testing
