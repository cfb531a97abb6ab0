#include "chat/service.hpp"

#include <algorithm>
#include <limits>
#include <unordered_set>

#include "util/clock.hpp"
#include "util/crypto.hpp"
#include "util/log.hpp"

namespace parley::chat {

namespace {
user_public to_public(const user_record& u) { return {u.id, u.username, u.display_name}; }
}  // namespace

service::service(store& db, scheduler& sched, const codec& enc, options opts)
    : db_(db),
      sched_(sched),
      codec_(enc),
      opts_(opts),
      hub_(db, sched, enc, opts.delivery),
      presence_(db, sched, enc),
      login_limiter_(opts.login_max_failures, opts.login_window_ms),
      dummy_password_hash_(util::hash_password(util::random_token())) {
  for (std::size_t shard = 0; shard < sched_.shard_count(); ++shard) {
    if (opts_.writer_threads) {
      writers_.push_back(std::make_unique<threaded_batch_writer>(db_, sched_, shard));
    } else {
      writers_.push_back(std::make_unique<inline_batch_writer>(db_, sched_, shard));
    }
    owners_.push_back(
        std::make_unique<chat_owner>(shard, db_, sched_, codec_, hub_, inflight_, *writers_.back()));
    owners_.back()->set_options({opts_.max_group_members, opts_.chat_cache_members});
  }
}

service::~service() = default;

std::string service::direct_chat_id(std::string_view user_a, std::string_view user_b) {
  if (user_b < user_a) std::swap(user_a, user_b);
  std::string pair;
  pair.append(user_a).push_back('\0');
  pair.append(user_b);
  auto digest = util::fingerprint(pair);
  return util::derived_id('d', digest.data());
}

std::size_t service::owner_of(std::string_view chat_id) const {
  return std::hash<std::string_view>{}(chat_id) % owners_.size();
}

void service::on_owner(std::string_view chat_id, std::function<void(chat_owner&)> task) {
  auto shard = owner_of(chat_id);
  if (sched_.current_shard() == shard) return task(*owners_[shard]);
  sched_.post(shard, [this, shard, task = std::move(task)] { task(*owners_[shard]); });
}

result<user_public> service::register_user(const std::string& username,
                                           const std::string& password,
                                           const std::string& display_name) {
  auto existing = db_.find_user_by_name(username);
  if (!existing) return existing.err();
  if (*existing) return make_error(errc::conflict, "username is taken");
  user_record user;
  user.id = util::random_id('u');
  user.username = username;
  user.display_name = display_name.empty() ? username : display_name;
  user.password_hash = util::hash_password(password);
  user.created = util::now_ms();
  if (auto created = db_.create_user(user); !created) return created.err();
  return to_public(user);
}

result<login_result> service::login(const std::string& username, const std::string& password,
                                    const std::string& device_name) {
  if (auto wait = login_limiter_.begin_attempt(username, util::now_ms()); wait > 0) {
    error e = make_error(errc::rate_limited, "too many failed logins; try again later");
    e.retry_ms = wait;
    return e;
  }
  // The attempt holds its place in the limiter until its outcome is known, whatever the path.
  login_limiter::attempt attempt(login_limiter_, username);
  auto user = db_.find_user_by_name(username);
  if (!user) return user.err();
  // An unknown username costs the same hash as a wrong password: no user enumeration by timing.
  bool good = util::verify_password(*user ? (*user)->password_hash : dummy_password_hash_,
                                    password) &&
              user->has_value();
  if (!good) {
    attempt.failed();
    return make_error(errc::unauthenticated, "wrong username or password");
  }
  const auto& u = **user;

  // A new device starts at each chat's current last_seq: history is fetched, not replayed.
  auto memberships = db_.memberships_of(u.id);
  if (!memberships) return memberships.err();
  session_record session;
  session.user_id = u.id;
  session.device_id = util::random_id('v');
  session.device_name = device_name;
  session.created = util::now_ms();
  std::vector<cursor_record> cursors;
  for (const auto& m : *memberships) {
    if (m.left_seq != 0) continue;
    auto chat = db_.find_chat(m.chat_id);
    if (!chat) return chat.err();
    if (*chat && (*chat)->last_seq > 0)
      cursors.push_back({session.device_id, m.chat_id, (*chat)->last_seq});
  }
  auto token = util::random_token();
  session.token_hash = util::sha256_bytes(token);
  if (auto created = db_.create_session(session, cursors); !created) return created.err();
  return login_result{token, u.id, session.device_id};
}

status service::logout(std::string_view token) {
  auto hash = util::sha256_bytes(token);
  auto session = db_.find_session(hash);
  if (!session) return session.err();
  if (!*session) return make_error(errc::unauthenticated, "unknown or revoked token");
  if (auto deleted = db_.delete_session(hash); !deleted) return deleted;
  hub_.close_device((*session)->user_id, (*session)->device_id, 4001);
  return ok_status();
}

result<session_info> service::authenticate(std::string_view token) {
  auto session = db_.find_session(util::sha256_bytes(token));
  if (!session) return session.err();
  if (!*session) return make_error(errc::unauthenticated, "unknown or revoked token");
  return session_info{(*session)->user_id, (*session)->device_id};
}

void service::attach(std::shared_ptr<endpoint> ep) {
  presence_.connected(ep->who().user_id);
  hub_.attach(std::move(ep));
}

void service::detach(const std::shared_ptr<endpoint>& ep, const std::vector<std::string>& watched) {
  hub_.detach(ep.get());
  presence_.unwatch(ep, watched);
  presence_.disconnected(ep->who().user_id);
}

template <class Lookup>
result<std::vector<user_public>> service::find_users(const std::vector<std::string>& keys,
                                                    Lookup lookup) {
  std::vector<user_public> out;
  for (const auto& key : keys) {
    auto user = lookup(key);
    if (!user) return user.err();
    if (*user && std::none_of(out.begin(), out.end(),
                              [&](const user_public& u) { return u.user_id == (*user)->id; }))
      out.push_back(to_public(**user));
  }
  return out;
}

result<std::vector<user_public>> service::users_by_name(const std::vector<std::string>& names) {
  return find_users(names, [this](const std::string& name) { return db_.find_user_by_name(name); });
}

result<std::vector<user_public>> service::users_by_id(const std::vector<std::string>& ids) {
  return find_users(ids, [this](const std::string& id) { return db_.find_user(id); });
}

result<std::vector<chat_state>> service::chats(const session_info& who) {
  auto memberships = db_.memberships_of(who.user_id);
  if (!memberships) return memberships.err();
  std::vector<chat_state> out;
  for (const auto& m : *memberships) {
    if (m.left_seq != 0) continue;
    auto chat = db_.find_chat(m.chat_id);
    if (!chat) return chat.err();
    if (!*chat) continue;
    chat_state state;
    state.chat = std::move(**chat);
    state.read_seq = m.read_seq;
    state.delivered_seq = std::max(m.delivered_seq, m.read_seq);
    const seq_t last = state.chat.last_seq;
    const seq_t first_unread = std::max(m.read_seq + 1, m.joined_seq);
    if (first_unread <= last) {
      auto counted = db_.scan_messages(m.chat_id, first_unread, last, false,
                                       [&](const message_view& v) {
                                         if (v.kind != message_kind::system &&
                                             v.from_user != who.user_id)
                                           ++state.unread;
                                         return true;
                                       });
      if (!counted) return counted.err();
    }
    if (last >= m.joined_seq && last > 0) {
      auto msg = db_.find_message(m.chat_id, last);
      if (!msg) return msg.err();
      if (*msg) state.last_msg = std::move((*msg)->encoded);
    }
    out.push_back(std::move(state));
  }
  return out;
}

result<history_result> service::history(const session_info& who, const history_request& req) {
  auto m = db_.find_membership(who.user_id, req.chat);
  if (!m) return m.err();
  if (!*m) return make_error(errc::forbidden, "not a member of this chat");
  if ((*m)->left_seq != 0) return make_error(errc::forbidden, "no longer a member of this chat");
  // The window the user may see: from joining on.
  seq_t low = std::max<seq_t>((*m)->joined_seq, 1);
  seq_t high = std::numeric_limits<seq_t>::max();
  if (req.before) {
    if (*req.before <= low) return history_result{};
    high = *req.before - 1;
  }
  bool ascending = req.after.has_value();
  if (ascending) {
    if (*req.after >= high) return history_result{};
    low = std::max(low, *req.after + 1);
  }
  history_result out;
  auto scanned = db_.scan_messages(req.chat, low, high, !ascending, [&](const message_view& v) {
    if (out.messages.size() == req.limit) {
      out.more = true;
      return false;
    }
    out.messages.emplace_back(v.encoded);
    return true;
  });
  if (!scanned) return scanned.err();
  return out;
}

void service::open_direct(const session_info& who, const std::string& peer,
                          reply_fn<chat_record> done) {
  if (peer == who.user_id) return done(make_error(errc::bad_request, "peer is the caller"));
  auto user = db_.find_user(peer);
  if (!user) return done(user.err());
  if (!*user) return done(make_error(errc::not_found, "no such user"));
  auto id = direct_chat_id(who.user_id, peer);
  on_owner(id, [who, id, peer, done = std::move(done)](chat_owner& owner) {
    owner.open_direct(who, id, peer, done);
  });
}

void service::send(const session_info& who, send_request req, reply_fn<send_result> done) {
  auto chat = req.chat;
  on_owner(chat, [who, req = std::move(req), done = std::move(done)](chat_owner& owner) mutable {
    owner.send(who, std::move(req), std::move(done));
  });
}

void service::ack(const session_info& who, std::string chat, seq_t seq, reply_fn<done> done) {
  auto id = chat;
  on_owner(id, [who, chat = std::move(chat), seq, done = std::move(done)](chat_owner& owner) {
    owner.ack(who, chat, seq, done);
  });
}

void service::read(const session_info& who, std::string chat, seq_t seq, reply_fn<done> done) {
  auto id = chat;
  on_owner(id, [who, chat = std::move(chat), seq, done = std::move(done)](chat_owner& owner) {
    owner.read(who, chat, seq, done);
  });
}

void service::receipts(const session_info& who, std::string chat, seq_t seq,
                       reply_fn<receipts_result> done) {
  auto id = chat;
  on_owner(id, [who, chat = std::move(chat), seq, done = std::move(done)](chat_owner& owner) {
    owner.receipts(who, chat, seq, done);
  });
}

void service::typing(const session_info& who, std::string chat, bool on, reply_fn<done> done) {
  auto id = chat;
  on_owner(id, [who, chat = std::move(chat), on, done = std::move(done)](chat_owner& owner) {
    owner.typing(who, chat, on, done);
  });
}

void service::create_group(const session_info& who, group_create_request req,
                           reply_fn<chat_record> done) {
  // The size first (PROTOCOL §6: arguments before lookups); the creator counts, once.
  std::unordered_set<std::string> distinct(req.members.begin(), req.members.end());
  distinct.erase(who.user_id);
  if (distinct.size() + 1 > opts_.max_group_members)
    return done(make_error(errc::too_large, "a group has at most " +
                                                std::to_string(opts_.max_group_members) +
                                                " members, its creator included"));
  if (auto known = require_users(db_, req.members); !known) return done(known.err());
  auto id = util::random_id('g');
  on_owner(id, [who, id, req = std::move(req), done = std::move(done)](chat_owner& owner) mutable {
    owner.create_group(who, id, std::move(req), done);
  });
}

void service::add_members(const session_info& who, std::string chat,
                          std::vector<std::string> users, reply_fn<chat_record> done) {
  // The users' existence is checked by the owner, after the caller's membership.
  auto id = chat;
  on_owner(id, [who, chat = std::move(chat), users = std::move(users),
                done = std::move(done)](chat_owner& owner) {
    owner.add_members(who, chat, users, done);
  });
}

void service::remove_members(const session_info& who, std::string chat,
                             std::vector<std::string> users, reply_fn<chat_record> done) {
  auto id = chat;
  on_owner(id, [who, chat = std::move(chat), users = std::move(users),
                done = std::move(done)](chat_owner& owner) {
    owner.remove_members(who, chat, users, done);
  });
}

void service::leave(const session_info& who, std::string chat, reply_fn<done> done) {
  auto id = chat;
  on_owner(id, [who, chat = std::move(chat), done = std::move(done)](chat_owner& owner) {
    owner.leave(who, chat, done);
  });
}

void service::update_group(const session_info& who, group_update_request req,
                           reply_fn<chat_record> done) {
  auto id = req.chat;
  on_owner(id, [who, req = std::move(req), done = std::move(done)](chat_owner& owner) mutable {
    owner.update_group(who, std::move(req), done);
  });
}

void service::presence_watch(const std::shared_ptr<endpoint>& ep, const session_info& who,
                             const std::vector<std::string>& previous,
                             const std::vector<std::string>& users,
                             std::vector<std::string>& watched, reply_fn<presence_result> done) {
  // Only users who share a chat with the caller may be watched.
  auto mine = db_.memberships_of(who.user_id);
  if (!mine) return done(mine.err());
  std::unordered_set<std::string> my_chats;
  for (const auto& m : *mine)
    if (m.left_seq == 0) my_chats.insert(m.chat_id);
  std::vector<std::string> allowed, denied;
  for (const auto& u : users) {
    if (std::find(allowed.begin(), allowed.end(), u) != allowed.end() ||
        std::find(denied.begin(), denied.end(), u) != denied.end())
      continue;
    bool shares = u == who.user_id;
    if (!shares) {
      auto theirs = db_.memberships_of(u);
      if (!theirs) return done(theirs.err());
      shares = std::any_of(theirs->begin(), theirs->end(), [&](const membership_record& m) {
        return m.left_seq == 0 && my_chats.contains(m.chat_id);
      });
    }
    (shares ? allowed : denied).push_back(u);
  }
  watched = allowed;
  presence_.watch(ep, previous, allowed,
                  [done, denied = std::move(denied)](std::vector<presence_state> states) {
                    done(presence_result{std::move(states), denied});
                  });
}

}  // namespace parley::chat
