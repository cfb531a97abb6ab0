// chat_owner — everything that changes a chat, on the chat's owner shard.
//
// Every chat has one owner shard (a hash of its id). Only the owner assigns the chat's seqs,
// writes its messages and cursors and fans them out, so the hot path takes no lock and a chat's
// order holds by construction. Work that arrives in one turn of the shard's loop is written as
// ONE store batch (one WAL sync: group commit); the replies and the fan-out follow the write.
//
// Pipelining: the write runs on the batch_writer (off the loop). While one batch is being
// written, the next one gathers everything that arrives meanwhile and is submitted when the
// first is done; so at most one batch per shard is in flight, batches grow with load, and
// batches commit (and fan out) in order. Lookups of state that is not in the store yet (a cid
// sent, a cursor moved, a message appended) look at both batches.
//
// If a write fails, every change of that batch AND of the batch gathered behind it (built on
// top of it) is undone in the cache and every request in them is answered `unavailable`:
// nothing was done, and no seq is left with a gap.
//
// Memory: a cache entry per active chat (its record, its members' standing, and the senders of
// its latest seqs: a byte each), within a budget (options::max_cached_members); nothing else is
// kept per message beyond the batches.
//
// Thread safety: one chat_owner per shard; every method runs on that shard's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/batch_writer.hpp"
#include "chat/codec.hpp"
#include "chat/delivery_hub.hpp"
#include "chat/inflight_cids.hpp"
#include "chat/recent_senders.hpp"
#include "chat/requests.hpp"
#include "chat/scheduler.hpp"
#include "chat/store.hpp"

namespace parley::chat {

template <class T>
using reply_fn = std::function<void(result<T>)>;

class chat_owner {
 public:
  chat_owner(std::size_t shard, store& db, scheduler& sched, const codec& enc, delivery_hub& hub,
             inflight_cids& inflight, batch_writer& writer);
  ~chat_owner();

  // Gets or creates the direct chat `chat_id` of `who` and `peer` (the caller checked that the
  // peer exists and is not the caller).
  void open_direct(const session_info& who, const std::string& chat_id, const std::string& peer,
                   reply_fn<chat_record> done);
  void send(const session_info& who, send_request req, reply_fn<send_result> done);
  // ack and read move cursors and send the receipt events they cause (PROTOCOL §4.5).
  void ack(const session_info& who, const std::string& chat_id, seq_t seq, reply_fn<done> done);
  void read(const session_info& who, const std::string& chat_id, seq_t seq, reply_fn<done> done);
  void receipts(const session_info& who, const std::string& chat_id, seq_t seq,
                reply_fn<receipts_result> done);
  // Relays a typing notice to the other members' devices; nothing is stored.
  void typing(const session_info& who, const std::string& chat_id, bool on, reply_fn<done> done);

  // Groups (chat_owner_groups.cpp). The users named exist (the caller checked).
  void create_group(const session_info& who, const std::string& chat_id,
                    group_create_request req, reply_fn<chat_record> done);
  void add_members(const session_info& who, const std::string& chat_id,
                   const std::vector<std::string>& users, reply_fn<chat_record> done);
  void remove_members(const session_info& who, const std::string& chat_id,
                      const std::vector<std::string>& users, reply_fn<chat_record> done);
  void leave(const session_info& who, const std::string& chat_id, reply_fn<done> done);
  void update_group(const session_info& who, group_update_request req,
                    reply_fn<chat_record> done);

  struct options {
    std::size_t max_group_members = 256;
    // The chat cache's budget, in members of the cached chats (a member's standing is the bulk
    // of a cached chat: ~250 bytes): past it, the chats used longest ago are dropped (and read
    // again from the store when next used) until a quarter of the budget is free.
    std::size_t max_cached_members = std::size_t{1} << 20;
  };
  void set_options(options opts) { opts_ = opts; }

  // Chats in the cache, and the members they count for its budget (for metrics and tests).
  std::size_t cached_chats() const { return chats_.size(); }
  std::size_t cached_members() const { return cached_members_; }

 private:
  struct cached_chat {
    chat_record rec;
    std::shared_ptr<const std::vector<std::string>> member_ids;
    std::unordered_map<std::string, membership_record> standing;  // by user id, members only
    recent_senders recent;  // the senders of the latest seqs, for receipts
  };
  // A cache entry: the chat, and what eviction needs to know of it (kept beside the chat, so
  // that an undo restoring the chat's snapshot leaves the cache's bookkeeping alone).
  struct cache_slot {
    std::unique_ptr<cached_chat> chat;
    std::uint64_t used_in = 0;  // the batch generation that last used it
    std::size_t weight = 0;     // its members when it did (counted in cached_members_)
  };
  struct pending_send {
    std::string chat;
    content_fingerprint fingerprint;
    seq_t seq;
    time_ms ts;
  };

  // One group commit: what it writes, what it answers and fans out once durable, and how to undo
  // its changes to the cache if the write fails.
  struct pending_batch {
    write_batch writes;
    std::vector<delivery> deliveries;
    std::unordered_map<std::string, pending_send> sends;  // user \0 cid
    std::unordered_map<std::string, seq_t> cursors;       // device \0 chat
    struct chat_undo {
      seq_t last_seq;
      bool created;
      std::unique_ptr<cached_chat> snapshot;  // for membership changes: the whole chat before
    };
    std::unordered_map<std::string, chat_undo> undo_chats;  // chat id -> before the batch
    std::unordered_map<std::string, std::optional<membership_record>> undo_members;  // user \0 chat
    std::unordered_map<std::string, membership_record> memberships_to_write;  // user \0 chat
    std::vector<std::string> touched_chats;  // chat records to write
    struct completion {
      std::function<void()> on_ok;
      std::function<void(const error&)> on_fail;
    };
    std::vector<completion> completions;
    std::vector<std::pair<std::string, std::string>> claimed_cids;  // released after the write

    bool empty() const { return completions.empty() && deliveries.empty() && writes.empty(); }
    void clear() {
      writes.clear();
      deliveries.clear();
      sends.clear();
      cursors.clear();
      undo_chats.clear();
      undo_members.clear();
      memberships_to_write.clear();
      touched_chats.clear();
      completions.clear();
      claimed_cids.clear();
    }
  };

  // The cached chat, loaded from the store on first use; null with `err` set when the chat does
  // not exist (errc::forbidden) or the store fails.
  cached_chat* load(const std::string& chat_id, error& err);
  // Puts a new chat in the cache, used by the gathering batch.
  cached_chat& remember(const std::string& chat_id, std::unique_ptr<cached_chat> c);
  // Marks a cached chat used by the gathering batch.
  void use(cache_slot& slot);
  // Drops the chats used longest ago while the cache is over its budget. Never one used by the
  // gathering batch or the one in flight: their undo and their flush find them in the cache.
  void evict_if_over_budget();
  // The current member's standing in a chat, or null.
  static membership_record* member(cached_chat& c, const std::string& user_id);

  // Batch bookkeeping. Changes go to the gathering batch; flush() submits it at the end of the
  // loop pass unless a batch is in flight, in which case finished() submits it.
  void schedule_flush();
  void flush();
  void finished(status written);
  // Restores the cache as it was before `b` and answers its requests with `failure`.
  void undo(pending_batch& b, const error& failure);
  // Call BEFORE changing a chat's record or a member's standing: remembers the old state for
  // undo (once per batch) and marks the record to be written at flush. A membership change
  // (group ops) snapshots the whole cached chat.
  void touch_chat(cached_chat& c, bool created = false);
  void touch_membership(const membership_record& m);
  void snapshot_chat(cached_chat& c);
  // Marks a membership record to be written as it stands at flush (or as given, for a member
  // who left and is no longer in `standing`).
  void write_membership(const membership_record& m);
  // State written by the batches but maybe not in the store yet, gathering first, then the
  // batch in flight: the batch whose `map` (sends, cursors, memberships_to_write) holds `key`,
  // and the value there; {nullptr, nullptr} when neither does.
  template <class Map>
  std::pair<pending_batch*, typename Map::mapped_type*> find_pending(Map pending_batch::*map,
                                                                     const std::string& key) const {
    for (auto* b : {gathering_.get(), writing_.get()}) {
      if (!b) continue;
      if (auto it = (b->*map).find(key); it != (b->*map).end()) return {b, &it->second};
    }
    return {nullptr, nullptr};
  }
  // The messages of a chat in a seq range that are not in the store yet, in seq order.
  void for_each_pending_message(const std::string& chat, seq_t from, seq_t to,
                                const std::function<void(const message_record&)>& fn) const;

  // Appends a system message to the batch, delivered to `recipients` (every device, the
  // actor's included); returns its seq.
  seq_t append_system(cached_chat& c, system_event event,
                      std::shared_ptr<const std::vector<std::string>> recipients);
  // Queues a `chat` event for the members and `also` (users who just left or were removed).
  void announce_chat(cached_chat& c, const std::vector<std::string>& also = {});
  // The admin of a group, or an error reply.
  std::optional<error> require_admin(cached_chat& c, const std::string& user_id) const;
  static void rebuild_member_ids(cached_chat& c);
  // Queues the receipt events for `user`'s `kind` cursor moving from `from` (exclusive) to
  // `to` (inclusive): to the devices of the other users who sent messages in that range.
  status queue_receipts(cached_chat& c, const std::string& user, std::string_view kind,
                        seq_t from, seq_t to);
  // Runs `fn` once the current batch is durable (right after the write, on this shard).
  void after_commit(std::function<void()> on_ok, std::function<void(const error&)> on_fail);

  std::size_t shard_;
  store& db_;
  scheduler& sched_;
  const codec& codec_;
  delivery_hub& hub_;
  inflight_cids& inflight_;

  std::unordered_map<std::string, cache_slot> chats_;
  std::size_t cached_members_ = 0;  // the sum of the cached chats' weights
  std::uint64_t generation_ = 0;    // of the gathering batch; the one in flight is the previous
  std::uint64_t next_eviction_ = 0;  // no eviction pass before this generation
  static constexpr std::uint64_t kEvictionBackoff = 64;  // batches

  batch_writer& writer_;
  bool flush_scheduled_ = false;
  std::unique_ptr<pending_batch> gathering_;  // this loop pass's changes (and more, see above)
  std::unique_ptr<pending_batch> writing_;    // the batch in flight, or null
  std::unique_ptr<pending_batch> spare_;      // a cleared batch, reused (keeps its capacity)
  options opts_;
};

}  // namespace parley::chat
