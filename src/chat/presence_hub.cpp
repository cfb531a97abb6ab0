#include "chat/presence_hub.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>

#include "util/clock.hpp"
#include "util/log.hpp"

namespace parley::chat {

struct presence_hub::user_presence {
  unsigned connections = 0;
  std::optional<time_ms> last_seen;
  // Compared by owner (not by address): a new connection may reuse a closed one's address
  // while the closed one's unwatch is still on its way. Allocated by the first watch: most
  // users online are watched by nobody, and every online user's entry counts in the memory of
  // an idle connection (docs/benchmarks.md).
  std::unique_ptr<std::vector<std::weak_ptr<endpoint>>> watchers;
  bool watched() const { return watchers && !watchers->empty(); }
};

struct presence_hub::shard_state {
  std::unordered_map<std::string, user_presence> users;
};

presence_hub::presence_hub(store& db, scheduler& sched, const codec& enc)
    : db_(db), sched_(sched), codec_(enc) {
  for (std::size_t i = 0; i < sched_.shard_count(); ++i)
    shards_.push_back(std::make_unique<shard_state>());
}

presence_hub::~presence_hub() = default;

std::size_t presence_hub::owner_of(const std::string& user_id) const {
  return std::hash<std::string>{}(user_id) % shards_.size();
}

presence_hub::user_presence& presence_hub::entry(shard_state& shard, const std::string& user_id) {
  auto [it, created] = shard.users.try_emplace(user_id);
  if (created) {
    auto stored = db_.find_last_seen(user_id);
    if (stored) {
      it->second.last_seen = *stored;
    } else {
      util::log_warn("presence of {}: {}", user_id, stored.err().message);
    }
  }
  return it->second;
}

void presence_hub::forget_if_idle(shard_state& shard, const std::string& user_id) {
  auto it = shard.users.find(user_id);
  if (it != shard.users.end() && it->second.connections == 0 && !it->second.watched())
    shard.users.erase(it);
}

void presence_hub::notify(const user_presence& p, const std::string& user_id) {
  if (!p.watched()) return;
  auto frame = codec_.presence_event({user_id, p.connections > 0, p.last_seen});
  for (const auto& weak : *p.watchers) {
    if (auto ep = weak.lock()) {
      sched_.post(ep->shard(), [ep, frame] { ep->push(frame); });
    }
  }
}

void presence_hub::connected(const std::string& user_id) {
  auto shard = owner_of(user_id);
  sched_.post(shard, [this, shard, user_id] {
    auto& p = entry(*shards_[shard], user_id);
    if (++p.connections == 1) notify(p, user_id);
  });
}

void presence_hub::disconnected(const std::string& user_id) {
  auto shard = owner_of(user_id);
  sched_.post(shard, [this, shard, user_id] {
    auto& st = *shards_[shard];
    auto it = st.users.find(user_id);
    if (it == st.users.end() || it->second.connections == 0) return;
    auto& p = it->second;
    if (--p.connections == 0) {
      p.last_seen = util::now_ms();
      // Written on the change only; a failure costs an older last_seen after a restart.
      if (auto saved = db_.set_last_seen(user_id, *p.last_seen); !saved)
        util::log_warn("saving last_seen of {}: {}", user_id, saved.err().message);
      notify(p, user_id);
    }
    forget_if_idle(st, user_id);
  });
}

namespace {
bool same_owner(const std::weak_ptr<endpoint>& a, const std::weak_ptr<endpoint>& b) {
  return !a.owner_before(b) && !b.owner_before(a);
}
}  // namespace

void presence_hub::unwatch(const std::weak_ptr<endpoint>& ep,
                           const std::vector<std::string>& users) {
  for (const auto& user_id : users) {
    auto shard = owner_of(user_id);
    sched_.post(shard, [this, shard, ep, user_id] {
      auto& st = *shards_[shard];
      auto it = st.users.find(user_id);
      if (it == st.users.end()) return;
      if (auto& watchers = it->second.watchers) {
        std::erase_if(*watchers, [&](const auto& w) { return same_owner(w, ep); });
        if (watchers->empty()) watchers.reset();  // an online user nobody watches holds none
      }
      forget_if_idle(st, user_id);
    });
  }
}

void presence_hub::watch(const std::shared_ptr<endpoint>& ep,
                         const std::vector<std::string>& previous,
                         const std::vector<std::string>& users,
                         std::function<void(std::vector<presence_state>)> done) {
  unwatch(ep, previous);
  // The answers come from several shards; the last one to answer replies.
  struct gather {
    std::mutex mutex;
    std::vector<presence_state> states;
    std::atomic<std::size_t> remaining;
    std::function<void(std::vector<presence_state>)> done;
  };
  auto g = std::make_shared<gather>();
  g->states.resize(users.size());
  g->remaining = users.size();
  g->done = std::move(done);
  if (users.empty()) return g->done({});
  std::weak_ptr<endpoint> weak = ep;
  for (std::size_t i = 0; i < users.size(); ++i) {
    auto shard = owner_of(users[i]);
    sched_.post(shard, [this, shard, g, i, weak, user_id = users[i]] {
      auto& p = entry(*shards_[shard], user_id);
      if (!p.watchers) p.watchers = std::make_unique<std::vector<std::weak_ptr<endpoint>>>();
      auto& watchers = *p.watchers;
      std::erase_if(watchers, [](const auto& w) { return w.expired(); });
      if (std::none_of(watchers.begin(), watchers.end(),
                       [&](const auto& w) { return same_owner(w, weak); }))
        watchers.push_back(weak);
      {
        std::lock_guard lock(g->mutex);
        g->states[i] = {user_id, p.connections > 0, p.last_seen};
      }
      if (g->remaining.fetch_sub(1) == 1) g->done(std::move(g->states));
    });
  }
}

}  // namespace parley::chat
