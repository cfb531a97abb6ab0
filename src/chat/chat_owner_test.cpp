// chat_owner's pipelining (one batch in flight while the next gathers), against the in-memory
// store, with a writer that holds each batch until the test lets it be written: the window in
// which a batch is accepted but not yet in the store is then as wide as the test needs.
#include <gtest/gtest.h>

#include <deque>
#include <optional>

#include "chat/chat_owner.hpp"
#include "chat/testing/manual_scheduler.hpp"
#include "proto/encode.hpp"
#include "store/memory/memory_store.hpp"

namespace parley::chat {
namespace {

// Keeps submitted batches unwritten until release() writes the oldest one and posts its done.
class held_writer final : public batch_writer {
 public:
  held_writer(store& db, scheduler& sched) : db_(db), sched_(sched) {}
  void submit(const write_batch& batch, std::function<void(status)> done) override {
    held_.push_back({&batch, std::move(done)});
  }
  std::size_t held() const { return held_.size(); }
  void release() {
    ASSERT_FALSE(held_.empty());
    auto job = std::move(held_.front());
    held_.pop_front();
    status written = db_.write(*job.batch);
    sched_.post(0, [done = std::move(job.done), written]() mutable { done(std::move(written)); });
  }

 private:
  struct job {
    const write_batch* batch;
    std::function<void(status)> done;
  };
  store& db_;
  scheduler& sched_;
  std::deque<job> held_;
};

// Collects the frames pushed to one device.
class recording_endpoint final : public endpoint {
 public:
  explicit recording_endpoint(session_info who) : who_(std::move(who)) {}
  std::size_t shard() const override { return 0; }
  const session_info& who() const override { return who_; }
  void push(frame_ptr frame) override { frames.push_back(*frame); }
  std::size_t queued_bytes() const override { return 0; }
  void when_drained(std::function<void()> fn) override { fn(); }
  void close(int) override {}
  std::size_t count(std::string_view ev) const {
    std::string tag = "\"ev\":\"" + std::string(ev) + "\"";
    std::size_t n = 0;
    for (const auto& f : frames) n += f.find(tag) != std::string::npos;
    return n;
  }
  std::vector<std::string> frames;

 private:
  session_info who_;
};

class ChatOwnerPipelineTest : public ::testing::Test {
 protected:
  ChatOwnerPipelineTest() {
    for (const auto* who : {&alice, &bob, &carol, &dave}) {  // group.add checks that users exist
      EXPECT_TRUE(db.create_user(user_record{who->user_id, who->user_id.substr(1), "", "", 1}).ok());
    }
    sched.run_on(0, [&] {
      owner.open_direct(alice, chat, bob.user_id, [](result<chat_record> r) { ASSERT_TRUE(r.ok()); });
    });
    sched.run_all();
    writer.release();  // the chat's creation
    sched.run_all();
  }

  // Sends on the owner shard; the reply lands in `out`.
  void send(const std::string& cid, const std::string& text, std::optional<result<send_result>>& out) {
    sched.run_on(0, [&] {
      owner.send(alice, send_request{chat, cid, text, {}, {}}, [&out](result<send_result> r) { out = r; });
    });
  }
  // Lets the oldest held batch fail to be written, and runs what follows from that.
  void fail_next_write() {
    db.fail_writes_for_test(true);
    writer.release();
    sched.run_all();
    db.fail_writes_for_test(false);
  }
  // Runs the scheduler and lets every held batch be written, in order.
  void commit_all() {
    sched.run_all();
    while (writer.held() > 0) {
      writer.release();
      sched.run_all();
    }
  }
  // A group of alice (admin), bob and carol, committed.
  std::string make_group() {
    std::string id = "ggroup";
    sched.run_on(0, [&] {
      owner.create_group(alice, id, group_create_request{"g", {bob.user_id, carol.user_id}},
                         [](result<chat_record> r) { ASSERT_TRUE(r.ok()); });
    });
    commit_all();
    return id;
  }
  std::vector<std::string> stored_members(const std::string& id) {
    auto rec = db.find_chat(id);
    EXPECT_TRUE(rec.ok() && rec->has_value());
    std::vector<std::string> out;
    if (rec.ok() && rec->has_value())
      for (const auto& m : (*rec)->members) out.push_back(m.user_id);
    return out;
  }
  std::vector<seq_t> stored_seqs() {
    std::vector<seq_t> seqs;
    auto scanned = db.scan_messages(chat, 1, 100, false, [&](const message_view& m) {
      seqs.push_back(m.seq);
      return true;
    });
    EXPECT_TRUE(scanned.ok());
    return seqs;
  }

  ::parley::store::memory_store db;
  testing::manual_scheduler sched{1};
  proto::wire_codec codec;
  delivery_hub hub{db, sched, codec, delivery_hub::options{}};
  inflight_cids inflight;
  held_writer writer{db, sched};
  chat_owner owner{0, db, sched, codec, hub, inflight, writer};
  session_info alice{"ualice", "valice"};
  session_info bob{"ubob", "vbob"};
  session_info carol{"ucarol", "vcarol"};
  session_info dave{"udave", "vdave"};
  std::string chat = "dchat";
};

TEST_F(ChatOwnerPipelineTest, TheNextBatchGathersWhileOneIsInFlightAndCommitsAfterIt) {
  std::optional<result<send_result>> first, second, third;
  send("c1", "one", first);
  sched.run_all();
  ASSERT_EQ(writer.held(), 1u);  // in flight
  send("c2", "two", second);
  send("c3", "three", third);
  sched.run_all();
  EXPECT_EQ(writer.held(), 1u) << "nothing is submitted while a batch is in flight";
  EXPECT_FALSE(first || second || third) << "nothing is answered before it is durable";

  writer.release();
  sched.run_all();
  ASSERT_TRUE(first && first->ok());
  EXPECT_EQ((*first)->seq, 1u);
  EXPECT_FALSE(second || third);
  ASSERT_EQ(writer.held(), 1u) << "the gathered batch follows the one that finished";

  writer.release();
  sched.run_all();
  ASSERT_TRUE(second && second->ok() && third && third->ok());
  EXPECT_EQ((*second)->seq, 2u);
  EXPECT_EQ((*third)->seq, 3u);
  EXPECT_EQ(stored_seqs(), (std::vector<seq_t>{1, 2, 3}));
}

TEST_F(ChatOwnerPipelineTest, ARetryOfASendInFlightIsItsDupNotASecondMessage) {
  std::optional<result<send_result>> first, retry, conflict, other;
  send("c1", "hello", first);
  sched.run_all();
  ASSERT_EQ(writer.held(), 1u);
  send("c1", "hello", retry);  // the client gave up waiting and sent it again
  send("c1", "other text", conflict);
  send("c2", "next", other);  // gathered behind: its batch will fail
  sched.run_all();
  ASSERT_TRUE(conflict.has_value());
  ASSERT_FALSE(conflict->ok());
  EXPECT_EQ(conflict->err().code, errc::conflict);

  writer.release();  // c1's batch is durable: c1 and its retry are answered by it
  sched.run_all();
  ASSERT_TRUE(first && first->ok() && retry && retry->ok());
  EXPECT_EQ((*retry)->seq, (*first)->seq);
  EXPECT_TRUE((*retry)->dup);
  EXPECT_FALSE(other.has_value());

  fail_next_write();  // a later failure does not make c1's answers untrue
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(other->ok());
  EXPECT_EQ(stored_seqs(), (std::vector<seq_t>{1}));
}

TEST_F(ChatOwnerPipelineTest, AnAckBehindACursorInFlightNeverMovesItBack) {
  for (int i = 1; i <= 5; ++i) {
    std::optional<result<send_result>> r;
    send("c" + std::to_string(i), "m", r);
    sched.run_all();
    writer.release();
    sched.run_all();
    ASSERT_TRUE(r && r->ok());
  }
  auto ack = [&](seq_t seq) {
    sched.run_on(0, [&] { owner.ack(bob, chat, seq, [](result<done> r) { EXPECT_TRUE(r.ok()); }); });
  };
  ack(5);
  sched.run_all();
  ASSERT_EQ(writer.held(), 1u);  // the cursor at 5 is in flight, the store still says nothing
  ack(3);                        // an older ack, arriving late
  sched.run_all();
  while (writer.held() > 0) {
    writer.release();
    sched.run_all();
  }
  auto cursor = db.find_cursor(bob.device_id, chat);
  ASSERT_TRUE(cursor.ok());
  EXPECT_EQ(cursor->value_or(0), 5u);
}

TEST_F(ChatOwnerPipelineTest, AFailedWriteFailsTheBatchGatheredBehindItAndLeavesNoGap) {
  std::optional<result<send_result>> first, second, after;
  send("c1", "one", first);
  sched.run_all();
  send("c2", "two", second);  // gathered behind the one in flight, with seq 2
  sched.run_all();
  fail_next_write();
  ASSERT_TRUE(first && second);
  ASSERT_FALSE(first->ok());
  EXPECT_EQ(first->err().code, errc::unavailable);
  ASSERT_FALSE(second->ok()) << "seq 2 would follow a seq 1 that was never written";
  EXPECT_EQ(second->err().code, errc::unavailable);
  EXPECT_EQ(writer.held(), 0u);

  send("c3", "three", after);
  sched.run_all();
  writer.release();
  sched.run_all();
  ASSERT_TRUE(after && after->ok());
  EXPECT_EQ((*after)->seq, 1u);
  EXPECT_EQ(stored_seqs(), (std::vector<seq_t>{1}));

  // The failed cids were released: a retry of c2 is a new send now.
  std::optional<result<send_result>> retry;
  send("c2", "two", retry);
  sched.run_all();
  writer.release();
  sched.run_all();
  ASSERT_TRUE(retry && retry->ok());
  EXPECT_FALSE((*retry)->dup);
  EXPECT_EQ((*retry)->seq, 2u);
}

TEST_F(ChatOwnerPipelineTest, AFailedGroupChangeAndTheSendBehindItAreBothUndone) {
  auto group = make_group();
  auto before = stored_members(group);
  std::optional<result<chat_record>> added;
  sched.run_on(0, [&] {
    owner.add_members(alice, group, {dave.user_id}, [&](result<chat_record> r) { added = r; });
  });
  sched.run_all();
  ASSERT_EQ(writer.held(), 1u);  // the addition (a system message and dave's membership)
  std::optional<result<send_result>> sent;
  sched.run_on(0, [&] {
    owner.send(dave, send_request{group, "d1", "hi", {}, {}}, [&](result<send_result> r) { sent = r; });
  });
  sched.run_all();  // dave, a member in the cache, sends behind the addition
  fail_next_write();
  ASSERT_TRUE(added && sent);
  EXPECT_FALSE(added->ok());
  EXPECT_FALSE(sent->ok());

  // dave is not a member; the next message takes the seq after the creation's.
  std::optional<result<send_result>> refused, next;
  sched.run_on(0, [&] {
    owner.send(dave, send_request{group, "d2", "hi", {}, {}}, [&](result<send_result> r) { refused = r; });
    owner.send(alice, send_request{group, "a1", "hello", {}, {}}, [&](result<send_result> r) { next = r; });
  });
  commit_all();
  ASSERT_TRUE(refused && next);
  ASSERT_FALSE(refused->ok());
  EXPECT_EQ(refused->err().code, errc::forbidden);
  ASSERT_TRUE(next->ok());
  EXPECT_EQ((*next)->seq, 2u);  // 1 is the group's creation
  EXPECT_EQ(stored_members(group), before);
}

TEST_F(ChatOwnerPipelineTest, AChatCreatedInAFailedBatchIsGoneWithWhatFollowedIt) {
  std::string fresh = "dfresh";
  std::optional<result<chat_record>> opened;
  std::optional<result<send_result>> sent;
  sched.run_on(0, [&] {
    owner.open_direct(alice, fresh, carol.user_id, [&](result<chat_record> r) { opened = r; });
  });
  sched.run_all();
  sched.run_on(0, [&] {
    owner.send(alice, send_request{fresh, "f1", "hi", {}, {}}, [&](result<send_result> r) { sent = r; });
  });
  sched.run_all();
  fail_next_write();
  ASSERT_TRUE(opened && sent);
  EXPECT_FALSE(opened->ok());
  EXPECT_FALSE(sent->ok());

  std::optional<result<send_result>> orphan;
  sched.run_on(0, [&] {
    owner.send(alice, send_request{fresh, "f2", "hi", {}, {}}, [&](result<send_result> r) { orphan = r; });
  });
  commit_all();
  ASSERT_TRUE(orphan.has_value());
  ASSERT_FALSE(orphan->ok()) << "the chat was never written";
  EXPECT_EQ(orphan->err().code, errc::forbidden);
  auto rec = db.find_chat(fresh);
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->has_value());
}

TEST_F(ChatOwnerPipelineTest, ADepartedMemberMayAckWhileItsDepartureIsInFlight) {
  auto group = make_group();
  std::optional<result<done>> left, acked;
  sched.run_on(0, [&] { owner.leave(bob, group, [&](result<done> r) { left = r; }); });
  sched.run_all();
  ASSERT_EQ(writer.held(), 1u);  // the departure, not in the store yet
  sched.run_on(0, [&] { owner.ack(bob, group, 100, [&](result<done> r) { acked = r; }); });
  commit_all();
  ASSERT_TRUE(left && left->ok());
  ASSERT_TRUE(acked.has_value());
  EXPECT_TRUE(acked->ok()) << "capped at the departure message, which is bob's to ack";
  auto cursor = db.find_cursor(bob.device_id, group);
  ASSERT_TRUE(cursor.ok());
  EXPECT_EQ(cursor->value_or(0), 2u);  // 1: creation, 2: bob left
}

TEST_F(ChatOwnerPipelineTest, NothingOfAFailedBatchIsDelivered) {
  auto bobs = std::make_shared<recording_endpoint>(bob);
  sched.run_on(0, [&] { hub.attach(bobs); });
  sched.run_all();
  ASSERT_EQ(bobs->count("synced"), 1u);
  std::optional<result<send_result>> failed, stored;
  send("c1", "lost", failed);
  sched.run_all();
  fail_next_write();
  EXPECT_EQ(bobs->count("msg"), 0u);
  send("c2", "kept", stored);
  commit_all();
  ASSERT_TRUE(stored && stored->ok());
  ASSERT_EQ(bobs->count("msg"), 1u);
  EXPECT_NE(bobs->frames.back().find("\"seq\":1"), std::string::npos);
}

TEST_F(ChatOwnerPipelineTest, AReceiptGoesToWhoeverSentASeqGivenAgainAfterAFailedWrite) {
  auto group = make_group();  // seq 1: its creation
  auto alices = std::make_shared<recording_endpoint>(alice);
  auto bobs = std::make_shared<recording_endpoint>(bob);
  sched.run_on(0, [&] {
    hub.attach(alices);
    hub.attach(bobs);
  });
  sched.run_all();
  auto send_as = [&](const session_info& who, const std::string& cid,
                     std::optional<result<send_result>>& out) {
    sched.run_on(0, [&] {
      owner.send(who, send_request{group, cid, "hi", {}, {}}, [&out](result<send_result> r) { out = r; });
    });
    sched.run_all();
  };
  std::optional<result<send_result>> lost, kept;
  send_as(alice, "a1", lost);  // seq 2, never written
  fail_next_write();
  ASSERT_TRUE(lost && !lost->ok());
  send_as(bob, "b1", kept);  // seq 2 again, bob's this time
  commit_all();
  ASSERT_TRUE(kept && kept->ok());
  ASSERT_EQ((*kept)->seq, 2u);

  std::optional<result<done>> acked;
  sched.run_on(0, [&] { owner.ack(carol, group, 2, [&](result<done> r) { acked = r; }); });
  commit_all();
  ASSERT_TRUE(acked && acked->ok());
  EXPECT_EQ(bobs->count("receipt"), 1u);
  EXPECT_EQ(alices->count("receipt"), 0u) << "alice's seq 2 was undone";
}

TEST_F(ChatOwnerPipelineTest, ReceiptsFindTheSendersOfSeqsOlderThanTheRecentOnes) {
  auto group = make_group();
  auto alices = std::make_shared<recording_endpoint>(alice);
  sched.run_on(0, [&] { hub.attach(alices); });
  sched.run_all();
  // alice's message first, then more of bob's than the chat keeps the senders of.
  std::optional<result<send_result>> out;
  sched.run_on(0, [&] {
    owner.send(alice, send_request{group, "a1", "old", {}, {}}, [&](result<send_result> r) { out = r; });
  });
  commit_all();
  ASSERT_TRUE(out && out->ok());
  for (std::size_t i = 0; i < recent_senders::max_capacity + 10; ++i) {
    sched.run_on(0, [&, i] {
      owner.send(bob, send_request{group, "b" + std::to_string(i), "new", {}, {}},
                 [](result<send_result> r) { ASSERT_TRUE(r.ok()); });
    });
  }
  commit_all();
  std::optional<result<done>> acked;
  sched.run_on(0, [&] {
    owner.ack(carol, group, recent_senders::max_capacity + 12, [&](result<done> r) { acked = r; });
  });
  commit_all();
  ASSERT_TRUE(acked && acked->ok());
  EXPECT_EQ(alices->count("receipt"), 1u) << "alice's seq 2 is read from the store";
}

TEST_F(ChatOwnerPipelineTest, ChatsUsedLongestAgoLeaveTheCacheAndComeBackFromTheStore) {
  owner.set_options({.max_cached_members = 8});  // four direct chats
  std::vector<std::string> peers;
  for (int i = 0; i < 12; ++i) {
    auto peer = "upeer" + std::to_string(i);
    peers.push_back(peer);
    sched.run_on(0, [&] {
      owner.open_direct(alice, "dpeer" + std::to_string(i), peer,
                        [](result<chat_record> r) { ASSERT_TRUE(r.ok()); });
    });
    commit_all();
    std::optional<result<send_result>> sent;
    sched.run_on(0, [&] {
      owner.send(alice, send_request{"dpeer" + std::to_string(i), "c" + std::to_string(i), "hi", {}, {}},
                 [&](result<send_result> r) { sent = r; });
    });
    commit_all();
    ASSERT_TRUE(sent && sent->ok());
    EXPECT_LE(owner.cached_chats(), 6u) << "after chat " << i;  // 4 plus the two in use
  }
  // The first chat left the cache long ago: its next message follows its stored seqs, and its
  // peer's ack reaches alice as a receipt (the senders are read from the store).
  auto alices = std::make_shared<recording_endpoint>(alice);
  sched.run_on(0, [&] { hub.attach(alices); });
  sched.run_all();
  std::optional<result<send_result>> again;
  sched.run_on(0, [&] {
    owner.send(alice, send_request{"dpeer0", "c-again", "again", {}, {}},
               [&](result<send_result> r) { again = r; });
  });
  commit_all();
  ASSERT_TRUE(again && again->ok());
  EXPECT_EQ((*again)->seq, 2u);
  std::optional<result<done>> acked;
  session_info peer0{peers[0], "vpeer0"};
  sched.run_on(0, [&] { owner.ack(peer0, "dpeer0", 2, [&](result<done> r) { acked = r; }); });
  commit_all();
  ASSERT_TRUE(acked && acked->ok());
  EXPECT_EQ(alices->count("receipt"), 1u);
}

TEST_F(ChatOwnerPipelineTest, AnUndoneMembershipChangeLeavesTheCacheBudgetCountingRight) {
  auto group = make_group();  // alice, bob, carol; the fixture's direct chat has two
  ASSERT_EQ(owner.cached_members(), 5u);
  sched.run_on(0, [&] {
    owner.add_members(alice, group, {dave.user_id}, [](result<chat_record>) {});
  });
  sched.run_all();  // in flight: the group has four members in the cache
  sched.run_on(0, [&] { owner.ack(bob, group, 1, [](result<done>) {}); });  // uses it: weight 4
  sched.run_all();
  EXPECT_EQ(owner.cached_members(), 6u);
  fail_next_write();  // the addition is undone: three members again
  sched.run_on(0, [&] { owner.ack(carol, group, 1, [](result<done>) {}); });
  commit_all();
  EXPECT_EQ(owner.cached_members(), 5u) << "2 + 3, as the cache holds them";
}

}  // namespace
}  // namespace parley::chat
