// chat::service against the in-memory store and a manual scheduler: the domain's rules,
// deterministic and without sockets.
#include "chat/service.hpp"

#include <gtest/gtest.h>

#include <map>

#include "chat/testing/manual_scheduler.hpp"
#include "proto/encode.hpp"
#include "store/memory/memory_store.hpp"
#include "util/crypto.hpp"

namespace parley::chat {
namespace {

// Writes on the owner's loop: the manual scheduler then sees every step (batch_writer.hpp).
service::options inline_writes() {
  service::options o;
  o.writer_threads = false;
  return o;
}

// Counts store writes, to check group commit.
class counting_store final : public ::parley::store::memory_store {
 public:
  status write(const write_batch& batch) override {
    ++writes;
    messages_written += batch.messages.size();
    return memory_store::write(batch);
  }
  int writes = 0;
  std::size_t messages_written = 0;
};

class fake_endpoint final : public endpoint {
 public:
  fake_endpoint(std::size_t shard, session_info who) : shard_(shard), who_(std::move(who)) {}
  std::size_t shard() const override { return shard_; }
  const session_info& who() const override { return who_; }
  void push(frame_ptr frame) override {
    if (closed_code) return;
    frames.push_back(*frame);
    queued += frame->size();
  }
  std::size_t queued_bytes() const override { return queued; }
  void when_drained(std::function<void()> fn) override { drained.push_back(std::move(fn)); }
  void close(int code) override { closed_code = code; }

  // Events of kind `ev` received so far.
  std::vector<std::string> events(std::string_view ev) const {
    std::vector<std::string> out;
    std::string tag = "\"ev\":\"" + std::string(ev) + "\"";
    for (const auto& f : frames)
      if (f.find(tag) != std::string::npos) out.push_back(f);
    return out;
  }
  // The seqs of the msg events received, in order.
  std::vector<seq_t> msg_seqs() const {
    std::vector<seq_t> out;
    for (const auto& f : events("msg")) {
      auto at = f.find("\"seq\":");
      out.push_back(std::stoull(f.substr(at + 6)));
    }
    return out;
  }

  std::size_t shard_;
  session_info who_;
  std::vector<std::string> frames;
  std::size_t queued = 0;
  std::vector<std::function<void()>> drained;
  int closed_code = 0;
};

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest() { util::init_crypto(); }

  session_info user(const std::string& name) {
    auto reg = svc.register_user(name, "password1", "");
    EXPECT_TRUE(reg.ok());
    return device(name);
  }
  session_info device(const std::string& name) {
    auto login = svc.login(name, "password1", "test");
    EXPECT_TRUE(login.ok());
    return {login->user_id, login->device_id};
  }
  std::string open(const session_info& a, const session_info& b) {
    std::string id;
    svc.open_direct(a, b.user_id, [&](result<chat_record> r) {
      ASSERT_TRUE(r.ok());
      id = r->id;
    });
    sched.run_all();
    return id;
  }
  // Sends and runs the scheduler; returns the result.
  result<send_result> send(const session_info& who, const std::string& chat,
                           const std::string& cid, const std::string& text) {
    std::optional<result<send_result>> out;
    svc.send(who, send_request{chat, cid, text, {}, {}}, [&](result<send_result> r) { out = r; });
    sched.run_all();
    EXPECT_TRUE(out.has_value());
    return out.value_or(result<send_result>(make_error(errc::internal, "no reply")));
  }
  std::shared_ptr<fake_endpoint> connect(const session_info& who, std::size_t shard = 0) {
    auto ep = std::make_shared<fake_endpoint>(shard, who);
    sched.run_on(shard, [&] { svc.attach(ep); });
    sched.run_all();
    return ep;
  }
  void ack(const session_info& who, const std::string& chat, seq_t seq) {
    bool done_called = false;
    svc.ack(who, chat, seq, [&](status s) {
      EXPECT_TRUE(s.ok());
      done_called = true;
    });
    sched.run_all();
    EXPECT_TRUE(done_called);
  }

  counting_store db;
  testing::manual_scheduler sched{3};
  proto::wire_codec codec;
  service svc{db, sched, codec, inline_writes()};
};

TEST_F(ServiceTest, RegisterRefusesATakenUsername) {
  ASSERT_TRUE(svc.register_user("alice", "password1", "Alice").ok());
  auto again = svc.register_user("alice", "password2", "");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code, errc::conflict);
}

TEST_F(ServiceTest, LoginCreatesADeviceEachTimeAndTokensAuthenticate) {
  ASSERT_TRUE(svc.register_user("alice", "password1", "").ok());
  auto a = svc.login("alice", "password1", "phone");
  auto b = svc.login("alice", "password1", "laptop");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->device_id, b->device_id);
  EXPECT_NE(a->token, b->token);
  auto who = svc.authenticate(a->token);
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->device_id, a->device_id);
  ASSERT_TRUE(svc.logout(a->token).ok());
  EXPECT_EQ(svc.authenticate(a->token).err().code, errc::unauthenticated);
  EXPECT_TRUE(svc.authenticate(b->token).ok());
  EXPECT_EQ(svc.logout(a->token).err().code, errc::unauthenticated);
}

TEST_F(ServiceTest, TooManyFailedLoginsAreRateLimited) {
  ASSERT_TRUE(svc.register_user("alice", "password1", "").ok());
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(svc.login("alice", "wrongpass", "").err().code, errc::unauthenticated);
  auto limited = svc.login("alice", "password1", "");
  ASSERT_FALSE(limited.ok());
  EXPECT_EQ(limited.err().code, errc::rate_limited);
  EXPECT_GT(limited.err().retry_ms, 0);
  EXPECT_EQ(svc.login("nobody", "password1", "").err().code, errc::unauthenticated);
}

TEST_F(ServiceTest, DirectChatIsOneChatFromBothSides) {
  auto a = user("alice"), b = user("bob");
  auto id1 = open(a, b), id2 = open(b, a);
  EXPECT_FALSE(id1.empty());
  EXPECT_EQ(id1, id2);
  std::optional<errc> self, unknown;
  svc.open_direct(a, a.user_id, [&](result<chat_record> r) { self = r.err().code; });
  svc.open_direct(a, "u_nobody", [&](result<chat_record> r) { unknown = r.err().code; });
  sched.run_all();
  EXPECT_EQ(self, errc::bad_request);
  EXPECT_EQ(unknown, errc::not_found);
}

TEST_F(ServiceTest, SendAssignsGaplessSeqsAndFansOutToOtherDevices) {
  auto a = user("alice"), b = user("bob");
  auto a2 = device("alice");
  auto chat = open(a, b);
  auto ep_a = connect(a, 0), ep_a2 = connect(a2, 1), ep_b = connect(b, 2);
  for (int i = 1; i <= 3; ++i) {
    auto r = send(a, chat, "c" + std::to_string(i), "hello");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->seq, static_cast<seq_t>(i));
    EXPECT_FALSE(r->dup);
  }
  EXPECT_EQ(ep_b->msg_seqs(), (std::vector<seq_t>{1, 2, 3}));
  EXPECT_EQ(ep_a2->msg_seqs(), (std::vector<seq_t>{1, 2, 3}));
  EXPECT_TRUE(ep_a->msg_seqs().empty());  // never its own messages
  EXPECT_EQ(ep_b->events("synced").size(), 1u);
}

TEST_F(ServiceTest, SendsOfOneTurnAreOneStoreWrite) {
  auto a = user("alice"), b = user("bob");
  auto chat = open(a, b);
  int writes_before = db.writes;
  std::vector<seq_t> seqs;
  for (int i = 0; i < 20; ++i)
    svc.send(a, send_request{chat, "c" + std::to_string(i), "x", {}, {}},
             [&](result<send_result> r) { seqs.push_back(r->seq); });
  sched.run_all();
  EXPECT_EQ(db.writes - writes_before, 1);
  ASSERT_EQ(seqs.size(), 20u);
  for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
}

TEST_F(ServiceTest, ResendIsIdempotentAndConflictsAreRefused) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto a2 = device("alice");
  auto ab = open(a, b), ac = open(a, c);
  auto first = send(a, ab, "same", "hi");
  ASSERT_TRUE(first.ok());
  auto again = send(a2, ab, "same", "hi");  // another device of the same user
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->dup);
  EXPECT_EQ(again->seq, first->seq);
  EXPECT_EQ(again->ts, first->ts);
  EXPECT_EQ(send(a, ab, "same", "changed").err().code, errc::conflict);
  EXPECT_EQ(send(a, ac, "same", "hi").err().code, errc::conflict);
  // Another user may use the same cid.
  EXPECT_FALSE(send(b, ab, "same", "hi")->dup);
  // Both in one batch: one message, the retry answered dup after the commit.
  std::vector<send_result> results;
  for (int i = 0; i < 2; ++i)
    svc.send(a, send_request{ab, "batch", "x", {}, {}},
             [&](result<send_result> r) { results.push_back(*r); });
  sched.run_all();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].seq, results[1].seq);
  EXPECT_FALSE(results[0].dup);
  EXPECT_TRUE(results[1].dup);
}

TEST_F(ServiceTest, SameCidToTwoChatsOnDifferentShardsInFlightIsAConflict) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto ab = open(a, b), ac = open(a, c);
  std::vector<result<send_result>> results;
  svc.send(a, send_request{ab, "x", "hi", {}, {}}, [&](result<send_result> r) { results.push_back(r); });
  svc.send(a, send_request{ac, "x", "hi", {}, {}}, [&](result<send_result> r) { results.push_back(r); });
  sched.run_all();
  ASSERT_EQ(results.size(), 2u);
  int ok = 0, conflicts = 0;
  for (auto& r : results) {
    if (r.ok()) ++ok;
    else if (r.err().code == errc::conflict) ++conflicts;
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(conflicts, 1);
}

TEST_F(ServiceTest, AFailedWriteAnswersUnavailableAndConsumesNoSeq) {
  auto a = user("alice"), b = user("bob");
  auto chat = open(a, b);
  ASSERT_TRUE(send(a, chat, "1", "one").ok());
  db.fail_writes_for_test(true);
  auto failed = send(a, chat, "2", "two");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.err().code, errc::unavailable);
  db.fail_writes_for_test(false);
  auto next = send(a, chat, "2", "two");  // the retry is not a dup: nothing was stored
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->seq, 2u);
  EXPECT_FALSE(next->dup);
}

TEST_F(ServiceTest, MembershipIsRequired) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto chat = open(a, b);
  EXPECT_EQ(send(c, chat, "x", "hi").err().code, errc::forbidden);
  EXPECT_EQ(send(c, "d_doesnotexist", "x", "hi").err().code, errc::forbidden);
  EXPECT_EQ(svc.history(c, history_request{chat}).err().code, errc::forbidden);
  std::optional<errc> acked;
  svc.ack(c, chat, 1, [&](status s) { acked = s.err().code; });
  sched.run_all();
  EXPECT_EQ(acked, errc::forbidden);
}

TEST_F(ServiceTest, ReplyToMustBeAnEarlierMessage) {
  auto a = user("alice"), b = user("bob");
  auto chat = open(a, b);
  ASSERT_TRUE(send(a, chat, "1", "one").ok());
  std::optional<result<send_result>> r;
  svc.send(a, send_request{chat, "2", "two", {}, 1}, [&](result<send_result> x) { r = x; });
  sched.run_all();
  EXPECT_TRUE(r->ok());
  svc.send(a, send_request{chat, "3", "three", {}, 9}, [&](result<send_result> x) { r = x; });
  sched.run_all();
  EXPECT_EQ(r->err().code, errc::bad_request);
}

TEST_F(ServiceTest, ReplayStartsAboveTheCursorSkipsOwnMessagesThenSyncs) {
  auto a = user("alice"), b = user("bob");
  auto chat = open(a, b);
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(send(i % 2 ? a : b, chat, std::to_string(i), "m").ok());
  auto ep = connect(b);
  EXPECT_EQ(ep->msg_seqs(), (std::vector<seq_t>{1, 3, 5}));  // 2 and 4 were bob's own
  EXPECT_EQ(ep->frames.back(), R"({"ev":"synced"})");
  ack(b, chat, 3);
  svc.detach(ep, {});
  auto again = connect(b);
  EXPECT_EQ(again->msg_seqs(), (std::vector<seq_t>{5}));
}

TEST_F(ServiceTest, AcksAreCappedAndNeverGoBack) {
  auto a = user("alice"), b = user("bob");
  auto chat = open(a, b);
  ASSERT_TRUE(send(a, chat, "1", "m").ok());
  ASSERT_TRUE(send(a, chat, "2", "m").ok());
  ack(b, chat, 100);
  EXPECT_EQ(db.find_cursor(b.device_id, chat)->value(), 2u);
  ack(b, chat, 1);
  EXPECT_EQ(db.find_cursor(b.device_id, chat)->value(), 2u);
  auto states = svc.chats(b);
  ASSERT_TRUE(states.ok());
  ASSERT_EQ(states->size(), 1u);
  EXPECT_EQ((*states)[0].delivered_seq, 2u);
  EXPECT_EQ((*states)[0].unread, 2u);
  bool read_done = false;
  svc.read(b, chat, 50, [&](status s) { read_done = s.ok(); });
  sched.run_all();
  EXPECT_TRUE(read_done);
  states = svc.chats(b);
  EXPECT_EQ((*states)[0].read_seq, 2u);
  EXPECT_EQ((*states)[0].unread, 0u);
  ASSERT_TRUE((*states)[0].last_msg.has_value());
}

TEST_F(ServiceTest, ANewDeviceStartsAtLastSeq) {
  auto a = user("alice"), b = user("bob");
  auto chat = open(a, b);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(send(a, chat, std::to_string(i), "old").ok());
  auto b2 = device("bob");
  auto ep = connect(b2);
  EXPECT_TRUE(ep->msg_seqs().empty());
  ASSERT_TRUE(send(a, chat, "new", "new").ok());
  EXPECT_EQ(ep->msg_seqs(), (std::vector<seq_t>{5}));
  auto h = svc.history(b2, history_request{chat});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->messages.size(), 5u);
}

TEST_F(ServiceTest, ReplayIsPacedByTheQueueAndLeavesNoGapWithLiveTraffic) {
  auto a = user("alice"), b = user("bob");
  auto chat = open(a, b);
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(send(a, chat, std::to_string(i), "m").ok());
  service::options opts = inline_writes();
  // A second service over the same store with a tiny replay window.
  opts.delivery.replay_high_water = 1;
  service paced(db, sched, codec, opts);
  auto ep = std::make_shared<fake_endpoint>(0, b);
  sched.run_on(0, [&] { paced.attach(ep); });
  EXPECT_EQ(ep->msg_seqs(), (std::vector<seq_t>{1}));
  // Live messages arrive while replaying: not pushed live, picked up by the replay.
  for (int i = 11; i <= 12; ++i) {
    std::optional<result<send_result>> r;
    paced.send(a, send_request{chat, std::to_string(i), "m", {}, {}},
               [&](result<send_result> x) { r = x; });
    sched.run_all();
    ASSERT_TRUE(r->ok());
  }
  while (!ep->drained.empty()) {
    auto fn = std::move(ep->drained.front());
    ep->drained.erase(ep->drained.begin());
    ep->queued = 0;
    sched.run_on(0, fn);
    sched.run_all();
  }
  std::vector<seq_t> expected;
  for (seq_t s = 1; s <= 12; ++s) expected.push_back(s);
  EXPECT_EQ(ep->msg_seqs(), expected);
  EXPECT_EQ(ep->events("synced").size(), 1u);
  EXPECT_EQ(ep->frames.back(), R"({"ev":"synced"})");
}

TEST_F(ServiceTest, HistoryWindows) {
  auto a = user("alice"), b = user("bob");
  auto chat = open(a, b);
  for (int i = 1; i <= 7; ++i) ASSERT_TRUE(send(a, chat, std::to_string(i), "m").ok());
  auto seqs = [&](const history_result& h) {
    std::vector<seq_t> out;
    for (const auto& m : h.messages) out.push_back(std::stoull(m.substr(m.find("\"seq\":") + 6)));
    return out;
  };
  auto newest = svc.history(a, history_request{chat, {}, {}, 3});
  EXPECT_EQ(seqs(*newest), (std::vector<seq_t>{7, 6, 5}));
  EXPECT_TRUE(newest->more);
  auto before = svc.history(a, history_request{chat, 5, {}, 10});
  EXPECT_EQ(seqs(*before), (std::vector<seq_t>{4, 3, 2, 1}));
  EXPECT_FALSE(before->more);
  auto after = svc.history(a, history_request{chat, {}, 2, 3});
  EXPECT_EQ(seqs(*after), (std::vector<seq_t>{3, 4, 5}));
  EXPECT_TRUE(after->more);
  auto between = svc.history(a, history_request{chat, 6, 2, 10});
  EXPECT_EQ(seqs(*between), (std::vector<seq_t>{3, 4, 5}));
  EXPECT_FALSE(between->more);
  EXPECT_TRUE(svc.history(a, history_request{chat, 1, {}, 10})->messages.empty());
}

TEST_F(ServiceTest, LogoutClosesTheDevicesConnections) {
  ASSERT_TRUE(svc.register_user("alice", "password1", "").ok());
  auto l1 = svc.login("alice", "password1", "");
  auto l2 = svc.login("alice", "password1", "");
  auto ep1 = connect({l1->user_id, l1->device_id}, 1);
  auto ep2 = connect({l2->user_id, l2->device_id}, 2);
  ASSERT_TRUE(svc.logout(l1->token).ok());
  sched.run_all();
  EXPECT_EQ(ep1->closed_code, 4001);
  EXPECT_EQ(ep2->closed_code, 0);
}

class GroupTest : public ServiceTest {
 protected:
  chat_record create(const session_info& who, std::vector<std::string> members,
                     std::string title = "team") {
    std::optional<result<chat_record>> out;
    svc.create_group(who, group_create_request{title, members},
                     [&](result<chat_record> r) { out = r; });
    sched.run_all();
    EXPECT_TRUE(out && out->ok());
    return out && out->ok() ? out->value() : chat_record{};
  }
  template <class T, class Fn>
  result<T> call(Fn fn) {
    std::optional<result<T>> out;
    fn([&](result<T> r) { out = r; });
    sched.run_all();
    EXPECT_TRUE(out.has_value());
    return out.value_or(result<T>(make_error(errc::internal, "no reply")));
  }
};

TEST_F(GroupTest, CreateLogsASystemMessageAndAnnouncesTheChat) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto ep_a = connect(a), ep_b = connect(b, 1);
  auto g = create(a, {b.user_id, c.user_id, b.user_id});
  EXPECT_EQ(g.kind, chat_kind::group);
  ASSERT_EQ(g.members.size(), 3u);
  EXPECT_EQ(g.members[0].role, member_role::admin);
  EXPECT_EQ(g.last_seq, 1u);
  // The actor's devices get the system message too.
  for (auto* ep : {ep_a.get(), ep_b.get()}) {
    ASSERT_EQ(ep->events("msg").size(), 1u);
    EXPECT_NE(ep->events("msg")[0].find(R"("kind":"system")"), std::string::npos);
    EXPECT_NE(ep->events("msg")[0].find(R"("event":"created")"), std::string::npos);
    EXPECT_EQ(ep->events("chat").size(), 1u);
  }
  auto unknown = call<chat_record>([&](auto done) {
    svc.create_group(a, group_create_request{"x", {"unobody"}}, done);
  });
  EXPECT_EQ(unknown.err().code, errc::not_found);
}

TEST_F(GroupTest, TheMemberLimitCountsTheCreator) {
  service::options opts = inline_writes();
  opts.max_group_members = 3;
  service small(db, sched, codec, opts);
  auto a = user("alice"), b = user("bob"), c = user("carol"), d = user("dave");
  std::optional<result<chat_record>> out;
  small.create_group(a, group_create_request{"t", {b.user_id, c.user_id, d.user_id}},
                     [&](result<chat_record> r) { out = r; });
  sched.run_all();
  EXPECT_EQ(out->err().code, errc::too_large);
  small.create_group(a, group_create_request{"t", {b.user_id, c.user_id}},
                     [&](result<chat_record> r) { out = r; });
  sched.run_all();
  ASSERT_TRUE(out->ok());
  auto id = (*out)->id;
  small.add_members(a, id, {d.user_id}, [&](result<chat_record> r) { out = r; });
  sched.run_all();
  EXPECT_EQ(out->err().code, errc::too_large);
}

TEST_F(GroupTest, ARemovedMemberGetsTheRemovalAndNothingAfter) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto g = create(a, {b.user_id, c.user_id});
  auto ep_b = connect(b, 1);
  ASSERT_TRUE(send(a, g.id, "m1", "before").ok());
  // The removal and a send in the same batch: the send comes after the removal.
  std::optional<result<chat_record>> removed;
  std::optional<result<send_result>> after;
  svc.remove_members(a, g.id, {b.user_id}, [&](result<chat_record> r) { removed = r; });
  svc.send(c, send_request{g.id, "m2", "after", {}, {}}, [&](result<send_result> r) { after = r; });
  sched.run_all();
  ASSERT_TRUE(removed->ok() && after->ok());
  EXPECT_EQ((*after)->seq, 4u);
  EXPECT_EQ(ep_b->msg_seqs(), (std::vector<seq_t>{1, 2, 3}));  // created, m1, the removal
  EXPECT_EQ(ep_b->events("chat").size(), 1u);
  EXPECT_EQ(send(b, g.id, "m3", "x").err().code, errc::forbidden);
  EXPECT_EQ(svc.history(b, history_request{g.id}).err().code, errc::forbidden);
  // It may still ack up to its removal, capped there.
  ack(b, g.id, 100);
  EXPECT_EQ(db.find_cursor(b.device_id, g.id)->value(), 3u);
  // A reconnect replays up to the removal only (acked above).
  svc.detach(ep_b, {});
  auto again = connect(b, 2);
  EXPECT_TRUE(again->msg_seqs().empty());
}

TEST_F(GroupTest, AnAddedMemberSeesTheChatFromTheAddedMessageOn) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto g = create(a, {b.user_id});
  ASSERT_TRUE(send(a, g.id, "m1", "old").ok());
  auto added = call<chat_record>([&](auto done) { svc.add_members(a, g.id, {c.user_id}, done); });
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->members.size(), 3u);
  ASSERT_TRUE(send(a, g.id, "m2", "new").ok());
  auto ep_c = connect(c);
  EXPECT_EQ(ep_c->msg_seqs(), (std::vector<seq_t>{3, 4}));
  auto h = svc.history(c, history_request{g.id});
  EXPECT_EQ(h->messages.size(), 2u);
  auto forbidden = call<chat_record>([&](auto done) { svc.add_members(b, g.id, {c.user_id}, done); });
  EXPECT_EQ(forbidden.err().code, errc::forbidden);  // not an admin
}

TEST_F(GroupTest, TheLongestStandingMemberSucceedsTheLastAdmin) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto g = create(a, {b.user_id, c.user_id});
  auto ep_b = connect(b);
  auto left = call<done>([&](auto done) { svc.leave(a, g.id, done); });
  ASSERT_TRUE(left.ok());
  auto events = ep_b->events("msg");
  ASSERT_EQ(events.size(), 3u);  // created, left, admins
  EXPECT_NE(events[1].find(R"("event":"left")"), std::string::npos);
  EXPECT_NE(events[2].find(R"("event":"admins")"), std::string::npos);
  EXPECT_NE(events[2].find(b.user_id), std::string::npos);
  auto renamed = call<chat_record>([&](auto done) {
    svc.update_group(b, group_update_request{g.id, "renamed", {}, {}}, done);
  });
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->title, "renamed");
  auto headless = call<chat_record>([&](auto done) {
    svc.update_group(b, group_update_request{g.id, {}, {}, {b.user_id}}, done);
  });
  EXPECT_EQ(headless.err().code, errc::bad_request);
  auto direct = open(b, c);
  auto no = call<chat_record>([&](auto done) { svc.add_members(b, direct, {a.user_id}, done); });
  EXPECT_EQ(no.err().code, errc::bad_request);
}

TEST_F(GroupTest, ReceiptsGoOnlyToTheSendersNewlyCovered) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto g = create(a, {b.user_id, c.user_id});
  ASSERT_TRUE(send(a, g.id, "m1", "from alice").ok());  // seq 2
  ASSERT_TRUE(send(b, g.id, "m2", "from bob").ok());    // seq 3
  auto ep_a = connect(a), ep_b = connect(b, 1), ep_c = connect(c, 2);
  auto c2 = device("carol");
  auto ep_c2 = connect(c2, 0);
  ack(c, g.id, 2);  // covers alice's message only
  EXPECT_EQ(ep_a->events("receipt").size(), 1u);
  EXPECT_EQ(ep_b->events("receipt").size(), 0u);
  EXPECT_NE(ep_a->events("receipt")[0].find(R"("kind":"delivered","seq":2)"), std::string::npos);
  bool read_ok = false;
  svc.read(c, g.id, 3, [&](status s) { read_ok = s.ok(); });
  sched.run_all();
  ASSERT_TRUE(read_ok);
  // The read covers bob's message (and alice's again for the read kind); one event each.
  EXPECT_EQ(ep_b->events("receipt").size(), 1u);
  EXPECT_NE(ep_b->events("receipt")[0].find(R"("kind":"read","seq":3)"), std::string::npos);
  EXPECT_EQ(ep_a->events("receipt").size(), 2u);
  EXPECT_EQ(ep_c->events("receipt").size(), 0u);
  EXPECT_EQ(ep_c2->events("read_sync").size(), 1u);  // the reader's other device
  EXPECT_EQ(ep_c->events("read_sync").size(), 0u);   // not the device that read
  auto r = call<receipts_result>([&](auto done) { svc.receipts(a, g.id, 3, done); });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->read, (std::vector<std::string>{c.user_id}));
}

TEST_F(GroupTest, PresenceFollowsConnectionsWithoutFlapping) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  open(a, b);
  auto watcher = connect(a);
  std::vector<std::string> watched;
  std::optional<result<presence_result>> r;
  sched.run_on(0, [&] {
    svc.presence_watch(watcher, a, {}, {b.user_id, c.user_id}, watched,
                       [&](result<presence_result> x) { r = x; });
  });
  sched.run_all();
  ASSERT_TRUE(r && r->ok());
  ASSERT_EQ((*r)->presence.size(), 1u);
  EXPECT_FALSE((*r)->presence[0].online);
  EXPECT_EQ((*r)->denied, (std::vector<std::string>{c.user_id}));  // shares no chat
  auto b1 = connect(b, 1);
  EXPECT_EQ(watcher->events("presence").size(), 1u);
  auto b2 = connect(device("bob"), 2);
  svc.detach(b2, {});
  sched.run_all();
  EXPECT_EQ(watcher->events("presence").size(), 1u);  // a second device: no flap
  svc.detach(b1, {});
  sched.run_all();
  auto events = watcher->events("presence");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[1].find(R"("online":false)"), std::string::npos);
  EXPECT_TRUE(db.find_last_seen(b.user_id)->has_value());
}

// Regressions found in review.

TEST_F(GroupTest, AFailedBatchWithASendAndAGroupChangeLeavesNoSeqGap) {
  auto a = user("alice"), b = user("bob");
  auto g = create(a, {b.user_id});
  db.fail_writes_for_test(true);
  std::optional<result<send_result>> sent;
  std::optional<result<chat_record>> renamed;
  svc.send(a, send_request{g.id, "x", "lost", {}, {}}, [&](result<send_result> r) { sent = r; });
  svc.update_group(a, group_update_request{g.id, "new", {}, {}},
                   [&](result<chat_record> r) { renamed = r; });
  sched.run_all();
  ASSERT_FALSE(sent->ok());
  ASSERT_FALSE(renamed->ok());
  db.fail_writes_for_test(false);
  auto next = send(a, g.id, "y", "kept");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->seq, 2u);  // right after `created`
}

TEST_F(GroupTest, APausedReplayNeverPushesPastARemoval) {
  auto a = user("alice"), b = user("bob");
  auto g = create(a, {b.user_id});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(send(a, g.id, "m" + std::to_string(i), "x").ok());
  service::options opts = inline_writes();
  opts.delivery.replay_high_water = 1;  // one message per drain
  service paced(db, sched, codec, opts);
  auto ep = std::make_shared<fake_endpoint>(0, b);
  sched.run_on(0, [&] { paced.attach(ep); });
  // Bob is removed while his replay is paused, and more is sent after.
  std::optional<result<chat_record>> removed;
  paced.remove_members(a, g.id, {b.user_id}, [&](result<chat_record> r) { removed = r; });
  sched.run_all();
  ASSERT_TRUE(removed->ok());
  const seq_t removal = (*removed)->last_seq;
  for (int i = 0; i < 3; ++i) {
    std::optional<result<send_result>> r;
    paced.send(a, send_request{g.id, "late" + std::to_string(i), "x", {}, {}},
               [&](result<send_result> x) { r = x; });
    sched.run_all();
  }
  while (!ep->drained.empty()) {
    auto fn = std::move(ep->drained.front());
    ep->drained.erase(ep->drained.begin());
    ep->queued = 0;
    sched.run_on(0, fn);
    sched.run_all();
  }
  auto seqs = ep->msg_seqs();
  ASSERT_FALSE(seqs.empty());
  EXPECT_EQ(seqs.back(), removal);
  for (auto s : seqs) EXPECT_LE(s, removal);
  EXPECT_EQ(ep->events("synced").size(), 1u);
}

TEST_F(GroupTest, EventsWithoutSeqReachAReplayingDevice) {
  auto a = user("alice"), b = user("bob");
  auto g = create(a, {b.user_id});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(send(b, g.id, "m" + std::to_string(i), "x").ok());
  service::options opts = inline_writes();
  opts.delivery.replay_high_water = 1;
  service paced(db, sched, codec, opts);
  auto ep = std::make_shared<fake_endpoint>(0, b);
  sched.run_on(0, [&] { paced.attach(ep); });  // paused after one message
  bool read = false;
  paced.read(a, g.id, 4, [&](status st) { read = st.ok(); });
  sched.run_all();
  ASSERT_TRUE(read);
  EXPECT_EQ(ep->events("receipt").size(), 1u);  // not lost while replaying
}

TEST_F(GroupTest, ReceiptsCoverOnlyWhatTheMemberCouldSee) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto g = create(a, {b.user_id});
  ASSERT_TRUE(send(a, g.id, "before", "x").ok());  // seq 2: before carol
  auto ep_a = connect(a);
  auto added = call<chat_record>([&](auto done) { svc.add_members(a, g.id, {c.user_id}, done); });
  ASSERT_TRUE(added.ok());
  ack(c, g.id, added->last_seq);
  EXPECT_TRUE(ep_a->events("receipt").empty());
  // The `receipts` op agrees, and lists nobody for a system message.
  auto r2 = call<receipts_result>([&](auto done) { svc.receipts(a, g.id, 2, done); });
  EXPECT_TRUE(std::find(r2->delivered.begin(), r2->delivered.end(), c.user_id) == r2->delivered.end());
  auto r1 = call<receipts_result>([&](auto done) { svc.receipts(a, g.id, 1, done); });
  EXPECT_TRUE(r1->delivered.empty() && r1->read.empty());
}

TEST_F(GroupTest, ADepartedUserGetsNoReceiptsAndMayAckInTheSameBatch) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto g = create(a, {b.user_id, c.user_id});
  ASSERT_TRUE(send(b, g.id, "from bob", "x").ok());
  auto ep_b = connect(b);
  std::optional<status> left, acked;
  svc.leave(b, g.id, [&](status st) { left = st; });
  svc.ack(b, g.id, 3, [&](status st) { acked = st; });
  sched.run_all();
  ASSERT_TRUE(left->ok());
  EXPECT_TRUE(acked->ok());  // up to its departure, allowed
  bool read = false;
  svc.read(c, g.id, 3, [&](status st) { read = st.ok(); });
  sched.run_all();
  ASSERT_TRUE(read);
  EXPECT_TRUE(ep_b->events("receipt").empty());
}

TEST_F(GroupTest, NonMembersLearnNothingAboutADirectChat) {
  auto a = user("alice"), b = user("bob"), c = user("carol");
  auto direct = open(a, b);
  auto add = call<chat_record>([&](auto done) { svc.add_members(c, direct, {c.user_id}, done); });
  EXPECT_EQ(add.err().code, errc::forbidden);
  auto leave = call<done>([&](auto done) { svc.leave(c, direct, done); });
  EXPECT_EQ(leave.err().code, errc::forbidden);
  auto unknown_user = call<chat_record>([&](auto done) { svc.add_members(c, direct, {"unobody"}, done); });
  EXPECT_EQ(unknown_user.err().code, errc::forbidden);
}

}  // namespace
}  // namespace parley::chat
