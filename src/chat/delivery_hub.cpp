#include "chat/delivery_hub.hpp"

#include <atomic>
#include <deque>
#include <limits>
#include <unordered_set>

#include "util/log.hpp"

namespace parley::chat {

namespace {
constexpr int kCloseTryAgain = 1013;
constexpr std::size_t kReplayChunk = 512;  // messages read per store scan
}

// The replay plan of one endpoint: the chats still to read and where each one's replay stands.
// Exists only while the endpoint is replaying.
struct replay_state {
  std::deque<std::string> todo;                   // chats to read (again), in order
  std::unordered_set<std::string> queued;          // the chats in todo
  std::unordered_map<std::string, seq_t> next;     // chat -> the next seq to push
};

// Per connection: kept small (a registry entry per idle connection is part of the 1 KiB goal of
// docs/benchmarks.md): the device's ids are the endpoint's own, viewed, never copied, and the
// entry lives in the registry's node itself.
struct delivery_hub::entry {
  std::shared_ptr<endpoint> ep;
  std::unique_ptr<replay_state> replay;  // null once live
  const session_info& who() const { return ep->who(); }
};

struct delivery_hub::shard_registry {
  // Keyed by a view of the entry's endpoint's user id (alive as long as the entry). A user has
  // few devices per shard, so detach finds its entry in the user's range.
  std::unordered_multimap<std::string_view, entry> by_user;
  std::atomic<std::size_t> count{0};

  // The node of `ep`, or by_user.end() when it is not attached.
  auto node_of(const endpoint& ep) {
    auto [it, last] = by_user.equal_range(std::string_view(ep.who().user_id));
    while (it != last && it->second.ep.get() != &ep) ++it;
    return it == last ? by_user.end() : it;
  }
};

delivery_hub::delivery_hub(store& db, scheduler& sched, const codec& enc, options opts)
    : db_(db), sched_(sched), codec_(enc), opts_(opts) {
  for (std::size_t i = 0; i < sched_.shard_count(); ++i)
    shards_.push_back(std::make_unique<shard_registry>());
}

delivery_hub::~delivery_hub() = default;

std::size_t delivery_hub::attached_count() const {
  std::size_t n = 0;
  for (auto& s : shards_) n += s->count.load(std::memory_order_relaxed);
  return n;
}

void delivery_hub::attach(std::shared_ptr<endpoint> ep) {
  auto& reg = *shards_.at(ep->shard());
  const auto& who = ep->who();  // the endpoint's own: outlives the entry, which holds it
  // Node-based: the entry stays where it is until detach, whatever else is attached meanwhile
  // (nothing below detaches it: closing an endpoint only posts its end).
  auto& e = reg.by_user.emplace(std::string_view(who.user_id),
                                entry{std::move(ep), std::make_unique<replay_state>()})
                ->second;
  reg.count.fetch_add(1, std::memory_order_relaxed);

  auto memberships = db_.memberships_of(who.user_id);
  if (!memberships) {
    util::log_warn("replay for device {} failed: {}", who.device_id, memberships.err().message);
    e.ep->close(kCloseTryAgain);
    return;
  }
  for (const auto& m : *memberships) queue_chat(e, m.chat_id);
  continue_replay(e);
}

delivery_hub::entry* delivery_hub::find(const endpoint& ep) {
  auto& reg = *shards_.at(ep.shard());
  auto it = reg.node_of(ep);
  return it == reg.by_user.end() ? nullptr : &it->second;
}

void delivery_hub::queue_chat(entry& e, const std::string& chat_id) {
  auto& plan = *e.replay;
  if (plan.queued.insert(chat_id).second) plan.todo.push_back(chat_id);
}

// Reads one chunk of a chat's messages above its replay position and pushes those the device
// may see. The membership is read AFTER the messages: a removal that committed before the read
// of the messages is then visible, and a later one comes after every message read (a chat's
// writes are ordered), so nothing past a removal is ever pushed. Returns false when the chat
// is done; sets `failed` on a store error.
bool delivery_hub::replay_chunk(entry& e, const std::string& chat_id, bool& failed) {
  auto& plan = *e.replay;
  auto [pos, fresh] = plan.next.try_emplace(chat_id, 0);
  if (fresh) {
    // Start above the device's cursor, and not before the user joined (a hint: the membership
    // is checked again after the read below).
    auto cursor = db_.find_cursor(e.who().device_id, chat_id);
    auto joined = db_.find_membership(e.who().user_id, chat_id);
    if (!cursor || !joined) return failed = true, false;
    if (!*joined) return false;
    pos->second = std::max(cursor->value_or(0) + 1, (*joined)->joined_seq);
  }
  struct scanned_frame {
    seq_t seq;
    bool own;
    frame_ptr frame;
  };
  std::vector<scanned_frame> chunk;
  std::size_t bytes = e.ep->queued_bytes();
  bool more = false;
  auto scanned = db_.scan_messages(chat_id, pos->second, std::numeric_limits<seq_t>::max(), false,
                                   [&](const message_view& m) {
                                     if (bytes >= opts_.replay_high_water ||
                                         chunk.size() >= kReplayChunk) {
                                       more = true;
                                       return false;
                                     }
                                     auto frame = codec_.message_event(m.encoded);
                                     bytes += frame->size();
                                     chunk.push_back({m.seq, m.from_device == e.who().device_id,
                                                      std::move(frame)});
                                     return true;
                                   });
  if (!scanned) return failed = true, false;
  auto membership = db_.find_membership(e.who().user_id, chat_id);
  if (!membership) return failed = true, false;
  if (!*membership) return false;  // not a member: nothing to replay
  const auto& m = **membership;
  // Never before the user (last) joined, never past the message that ended the membership.
  const seq_t low = std::max(pos->second, m.joined_seq);
  const seq_t high = m.left_seq != 0 ? m.left_seq : std::numeric_limits<seq_t>::max();
  for (auto& f : chunk) {
    if (f.seq > high) return false;
    pos->second = f.seq + 1;
    if (f.seq >= low && !f.own) e.ep->push(std::move(f.frame));
  }
  return more;
}

void delivery_hub::continue_replay(entry& e) {
  auto& plan = *e.replay;
  while (!plan.todo.empty()) {
    const std::string chat_id = plan.todo.front();
    bool failed = false;
    bool more = replay_chunk(e, chat_id, failed);
    if (failed) {
      util::log_warn("replay for device {} failed reading {}", e.who().device_id, chat_id);
      e.ep->close(kCloseTryAgain);
      return;
    }
    if (more) {
      // The queue is full: go on when it drains (a huge backlog is paced, not a slow consumer).
      // The endpoint may be detached by then: its entry is looked up again.
      std::weak_ptr<endpoint> weak = e.ep;
      e.ep->when_drained([this, weak] {
        auto ep = weak.lock();
        if (!ep) return;
        if (auto* live = find(*ep); live && live->replay) continue_replay(*live);
      });
      return;
    }
    plan.todo.pop_front();
    plan.queued.erase(chat_id);
  }
  finish_replay(e);
}

void delivery_hub::finish_replay(entry& e) {
  e.replay.reset();
  e.ep->push(codec_.synced_event());
}

void delivery_hub::detach(const endpoint* ep) {
  auto& reg = *shards_.at(ep->shard());
  auto it = reg.node_of(*ep);
  if (it == reg.by_user.end()) return;
  reg.by_user.erase(it);  // a pending when_drained callback finds no entry and does nothing
  reg.count.fetch_sub(1, std::memory_order_relaxed);
}

void delivery_hub::publish(std::shared_ptr<const std::vector<delivery>> batch) {
  for (std::size_t shard = 0; shard < shards_.size(); ++shard) {
    sched_.post(shard, [this, shard, batch] { deliver_on_shard(shard, *batch); });
  }
}

void delivery_hub::deliver_on_shard(std::size_t shard, const std::vector<delivery>& batch) {
  auto& reg = *shards_[shard];
  if (reg.by_user.empty()) return;
  // Consecutive messages of a chat share their recipients: the devices on this shard are looked
  // up once per run of them (a busy group's batch holds many). Nothing below detaches an entry.
  std::vector<entry*> devices;
  const std::vector<std::string>* looked_up = nullptr;
  for (const auto& d : batch) {
    if (d.recipients.get() != looked_up) {
      looked_up = d.recipients.get();
      devices.clear();
      for (const auto& user : *looked_up) {
        auto [first, last] = reg.by_user.equal_range(user);
        for (auto it = first; it != last; ++it) devices.push_back(&it->second);
      }
    }
    for (auto* e : devices) {
      if (e->who().device_id == d.exclude_device) continue;
      if (e->replay && d.message) {
        // Read again from the store before the replay ends: pushed there, in order.
        queue_chat(*e, d.chat);
      } else {
        e->ep->push(d.frame);  // events without a seq of their own go out right away
      }
    }
  }
}

void delivery_hub::close_device(const std::string& user_id, const std::string& device_id,
                                int code) {
  for (std::size_t shard = 0; shard < shards_.size(); ++shard) {
    sched_.post(shard, [this, shard, user_id, device_id, code] {
      auto& reg = *shards_[shard];
      auto [first, last] = reg.by_user.equal_range(user_id);
      std::vector<std::shared_ptr<endpoint>> closing;
      for (auto it = first; it != last; ++it)
        if (it->second.who().device_id == device_id) closing.push_back(it->second.ep);
      for (auto& ep : closing) ep->close(code);
    });
  }
}

}  // namespace parley::chat
