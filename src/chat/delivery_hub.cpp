#include "chat/delivery_hub.hpp"

#include <atomic>
#include <limits>
#include <unordered_set>

#include "util/log.hpp"

namespace parley::chat {

namespace {
constexpr int kCloseTryAgain = 1013;
}

// The replay plan of one endpoint: where each chat's replay stands. Exists only while the
// endpoint is replaying.
struct replay_state {
  struct chat_pos {
    std::string chat;
    seq_t next = 1;  // the next seq to read
    seq_t last = std::numeric_limits<seq_t>::max();  // the last seq this user may see
  };
  std::vector<chat_pos> todo;
  std::size_t index = 0;
  std::unordered_map<std::string, std::size_t> position_of;  // chat -> index in todo
  std::unordered_set<std::string> dirty;  // chats that got live messages while replaying
};

struct delivery_hub::entry {
  std::shared_ptr<endpoint> ep;
  session_info who;
  std::unique_ptr<replay_state> replay;  // null once live
};

struct delivery_hub::shard_registry {
  std::unordered_multimap<std::string, std::shared_ptr<entry>> by_user;
  std::unordered_map<const endpoint*, std::shared_ptr<entry>> by_endpoint;
  std::atomic<std::size_t> count{0};
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

void delivery_hub::attach(std::shared_ptr<endpoint> ep, const session_info& who) {
  auto& reg = *shards_.at(ep->shard());
  auto e = std::make_shared<entry>();
  e->ep = std::move(ep);
  e->who = who;
  e->replay = std::make_unique<replay_state>();
  reg.by_user.emplace(who.user_id, e);
  reg.by_endpoint.emplace(e->ep.get(), e);
  reg.count.fetch_add(1, std::memory_order_relaxed);

  auto memberships = db_.memberships_of(who.user_id);
  if (!memberships) {
    util::log_warn("replay for device {} failed: {}", who.device_id, memberships.err().message);
    e->ep->close(kCloseTryAgain);
    return;
  }
  for (const auto& m : *memberships) {
    if (!plan_chat(*e, m.chat_id)) {
      e->ep->close(kCloseTryAgain);
      return;
    }
  }
  continue_replay(e);
}

// Adds one chat to the replay plan, starting above the device's cursor (and never before the
// user joined, never past the message that ended the membership).
bool delivery_hub::plan_chat(entry& e, const std::string& chat_id) {
  auto& plan = *e.replay;
  if (plan.position_of.contains(chat_id)) return true;
  auto membership = db_.find_membership(e.who.user_id, chat_id);
  auto cursor = db_.find_cursor(e.who.device_id, chat_id);
  if (!membership || !cursor) return false;
  if (!*membership) return true;  // not a member: nothing to replay
  const auto& m = **membership;
  replay_state::chat_pos pos;
  pos.chat = chat_id;
  pos.next = std::max(cursor->value_or(0), m.joined_seq > 0 ? m.joined_seq - 1 : 0) + 1;
  if (m.left_seq != 0) pos.last = m.left_seq;
  plan.position_of.emplace(chat_id, plan.todo.size());
  plan.todo.push_back(std::move(pos));
  return true;
}

void delivery_hub::continue_replay(const std::shared_ptr<entry>& e) {
  auto& plan = *e->replay;
  for (;;) {
    while (plan.index < plan.todo.size()) {
      auto& pos = plan.todo[plan.index];
      bool paused = false;
      if (pos.next <= pos.last) {
        auto scanned = db_.scan_messages(pos.chat, pos.next, pos.last, false,
                                         [&](const message_view& m) {
                                           pos.next = m.seq + 1;
                                           if (m.from_device != e->who.device_id)
                                             e->ep->push(codec_.message_event(m.encoded));
                                           if (e->ep->queued_bytes() >= opts_.replay_high_water) {
                                             paused = true;
                                             return false;
                                           }
                                           return true;
                                         });
        if (!scanned) {
          util::log_warn("replay for device {} failed: {}", e->who.device_id,
                         scanned.err().message);
          e->ep->close(kCloseTryAgain);
          return;
        }
      }
      if (paused) {
        std::weak_ptr<entry> weak = e;
        e->ep->when_drained([this, weak] {
          if (auto live = weak.lock(); live && live->replay) continue_replay(live);
        });
        return;
      }
      ++plan.index;
    }
    if (plan.dirty.empty()) break;
    // Live messages arrived for these chats while replaying: read them again from where their
    // replay stands (or from the cursor, for a chat that was not in the plan).
    auto dirty = std::move(plan.dirty);
    plan.dirty.clear();
    for (const auto& chat_id : dirty) {
      if (auto it = plan.position_of.find(chat_id); it != plan.position_of.end()) {
        auto pos = plan.todo[it->second];
        plan.todo.push_back(pos);
        it->second = plan.todo.size() - 1;
      } else if (!plan_chat(*e, chat_id)) {
        e->ep->close(kCloseTryAgain);
        return;
      }
    }
  }
  finish_replay(*e);
}

void delivery_hub::finish_replay(entry& e) {
  e.replay.reset();
  e.ep->push(codec_.synced_event());
}

void delivery_hub::detach(const endpoint* ep) {
  auto& reg = *shards_.at(ep->shard());
  auto it = reg.by_endpoint.find(ep);
  if (it == reg.by_endpoint.end()) return;
  auto e = it->second;
  reg.by_endpoint.erase(it);
  auto [first, last] = reg.by_user.equal_range(e->who.user_id);
  for (auto u = first; u != last; ++u) {
    if (u->second == e) {
      reg.by_user.erase(u);
      break;
    }
  }
  e->replay.reset();  // a pending when_drained callback finds no replay and does nothing
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
  for (const auto& d : batch) {
    for (const auto& user : *d.recipients) {
      auto [first, last] = reg.by_user.equal_range(user);
      for (auto it = first; it != last; ++it) {
        auto& e = *it->second;
        if (e.who.device_id == d.exclude_device) continue;
        if (e.replay) {
          e.replay->dirty.insert(d.chat);
        } else {
          e.ep->push(d.frame);
        }
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
        if (it->second->who.device_id == device_id) closing.push_back(it->second->ep);
      for (auto& ep : closing) ep->close(code);
    });
  }
}

}  // namespace parley::chat
