// chat_owner: group membership and title changes (PROTOCOL §3 group.*, §4.6).
//
// Every change is a system message in the chat's log, with its own seq, followed by a `chat`
// event. Because the owner shard assigns seqs and changes the member list in one order, each
// message's recipients are exactly the members at its seq: a removed or departed user gets the
// message that records it and nothing after it, also for sends already in flight.
#include <algorithm>

#include "chat/chat_owner.hpp"
#include "util/clock.hpp"
#include "util/crypto.hpp"

namespace parley::chat {

namespace {

std::vector<std::string> admins_of(const chat_record& rec) {
  std::vector<std::string> out;
  for (const auto& m : rec.members)
    if (m.role == member_role::admin) out.push_back(m.user_id);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The distinct entries of `users`, in their first order.
std::vector<std::string> distinct(const std::vector<std::string>& users) {
  std::vector<std::string> out;
  for (const auto& u : users)
    if (!contains(out, u)) out.push_back(u);
  return out;
}

}  // namespace

void chat_owner::rebuild_member_ids(cached_chat& c) {
  auto ids = std::make_shared<std::vector<std::string>>();
  for (const auto& m : c.rec.members) ids->push_back(m.user_id);
  c.member_ids = std::move(ids);
}

std::optional<error> chat_owner::require_admin(cached_chat& c, const std::string& user_id) const {
  // Membership first: a non-member learns nothing about the chat, not even its kind.
  auto* m = member(c, user_id);
  if (!m) return make_error(errc::forbidden, "not a member of this chat");
  if (c.rec.kind != chat_kind::group)
    return make_error(errc::bad_request, "a direct chat has no group operations");
  if (m->role != member_role::admin) return make_error(errc::forbidden, "admins only");
  return std::nullopt;
}

seq_t chat_owner::append_system(cached_chat& c, system_event event,
                                std::shared_ptr<const std::vector<std::string>> recipients) {
  message msg;
  msg.chat = c.rec.id;
  msg.seq = ++c.rec.last_seq;
  msg.ts = util::now_ms();
  msg.from = event.by;
  // System messages need a cid too; the server's own cannot collide with a client's, since
  // no dedup record is kept for them.
  msg.cid = "sys-" + std::to_string(msg.seq);
  msg.kind = message_kind::system;
  msg.system = std::move(event);
  auto encoded = codec_.encode_message(msg);
  gathering_->deliveries.push_back({msg.chat, msg.seq, codec_.message_event(encoded),
                                    std::move(recipients), {}, /*message=*/true});
  gathering_->writes.messages.push_back(
      {msg.chat, msg.seq, msg.ts, msg.from, {}, message_kind::system, std::move(encoded)});
  c.recent.append(msg.seq, msg.from, /*system=*/true);
  return msg.seq;
}

void chat_owner::announce_chat(cached_chat& c, const std::vector<std::string>& also) {
  auto recipients = std::make_shared<std::vector<std::string>>(*c.member_ids);
  for (const auto& u : also)
    if (!contains(*recipients, u)) recipients->push_back(u);
  gathering_->deliveries.push_back(
      {c.rec.id, c.rec.last_seq, codec_.chat_event(c.rec), std::move(recipients), {}});
}

void chat_owner::create_group(const session_info& who, const std::string& chat_id,
                              group_create_request req, reply_fn<chat_record> done) {
  auto invited = distinct(req.members);
  std::erase(invited, who.user_id);
  if (invited.size() + 1 > opts_.max_group_members)
    return done(make_error(errc::too_large, "a group has at most " +
                                                std::to_string(opts_.max_group_members) +
                                                " members, its creator included"));
  auto c = std::make_unique<cached_chat>();
  c->rec.id = chat_id;
  c->rec.kind = chat_kind::group;
  c->rec.title = req.title;
  c->rec.created = util::now_ms();
  c->rec.members.push_back({who.user_id, member_role::admin});
  for (const auto& u : invited) c->rec.members.push_back({u, member_role::member});
  for (const auto& m : c->rec.members) {
    c->standing.emplace(m.user_id, membership_record{.user_id = m.user_id,
                                                     .chat_id = chat_id,
                                                     .role = m.role,
                                                     .joined_seq = 1});
  }
  rebuild_member_ids(*c);
  auto& cached = remember(chat_id, std::move(c));
  touch_chat(cached, /*created=*/true);
  append_system(cached, {"created", who.user_id, invited, req.title}, cached.member_ids);
  for (const auto& [user, s] : cached.standing) write_membership(s);
  announce_chat(cached);
  after_commit([done, rec = cached.rec] { done(rec); }, [done](const error& e) { done(e); });
}

void chat_owner::add_members(const session_info& who, const std::string& chat_id,
                             const std::vector<std::string>& users, reply_fn<chat_record> done) {
  error err;
  auto* c = load(chat_id, err);
  if (!c) return done(err);
  if (auto denied = require_admin(*c, who.user_id)) return done(*denied);
  std::vector<std::string> added;
  for (const auto& u : distinct(users))
    if (!member(*c, u)) added.push_back(u);
  if (auto known = require_users(db_, added); !known) return done(known.err());
  if (c->rec.members.size() + added.size() > opts_.max_group_members)
    return done(make_error(errc::too_large, "a group has at most " +
                                                std::to_string(opts_.max_group_members) +
                                                " members"));
  if (!added.empty()) {
    snapshot_chat(*c);
    for (const auto& u : added) c->rec.members.push_back({u, member_role::member});
    rebuild_member_ids(*c);
    // The new members see the chat from the `added` message on.
    auto seq = append_system(*c, {"added", who.user_id, added, {}}, c->member_ids);
    for (const auto& u : added) {
      auto& s = c->standing[u];
      s = membership_record{.user_id = u, .chat_id = chat_id, .joined_seq = seq};
      write_membership(s);
    }
    announce_chat(*c);
  }
  after_commit([done, rec = c->rec] { done(rec); }, [done](const error& e) { done(e); });
}

void chat_owner::remove_members(const session_info& who, const std::string& chat_id,
                                const std::vector<std::string>& users,
                                reply_fn<chat_record> done) {
  error err;
  auto* c = load(chat_id, err);
  if (!c) return done(err);
  if (auto denied = require_admin(*c, who.user_id)) return done(*denied);
  auto removed = distinct(users);
  if (contains(removed, who.user_id))
    return done(make_error(errc::bad_request, "use group.leave to leave a group"));
  for (const auto& u : removed)
    if (!member(*c, u)) return done(make_error(errc::bad_request, "not a member: " + u));
  if (!removed.empty()) {
    snapshot_chat(*c);
    // The removal message still reaches the removed: recipients are the members before it.
    auto seq = append_system(*c, {"removed", who.user_id, removed, {}}, c->member_ids);
    std::erase_if(c->rec.members, [&](const chat_member& m) { return contains(removed, m.user_id); });
    rebuild_member_ids(*c);
    for (const auto& u : removed) {
      auto node = c->standing.extract(u);
      node.mapped().left_seq = seq;
      write_membership(node.mapped());
    }
    announce_chat(*c, removed);
  }
  after_commit([done, rec = c->rec] { done(rec); }, [done](const error& e) { done(e); });
}

void chat_owner::leave(const session_info& who, const std::string& chat_id, reply_fn<done> done) {
  error err;
  auto* c = load(chat_id, err);
  if (!c) return done(err);
  auto* standing = member(*c, who.user_id);
  if (!standing) return done(make_error(errc::forbidden, "not a member of this chat"));
  if (c->rec.kind != chat_kind::group)
    return done(make_error(errc::bad_request, "a direct chat cannot be left"));

  snapshot_chat(*c);
  auto seq = append_system(*c, {"left", who.user_id, {}, {}}, c->member_ids);
  std::erase_if(c->rec.members,
                [&](const chat_member& m) { return m.user_id == who.user_id; });
  rebuild_member_ids(*c);
  auto node = c->standing.extract(who.user_id);
  node.mapped().left_seq = seq;
  write_membership(node.mapped());
  // The last admin gone: the longest-standing member becomes admin, logged after `left`.
  if (!c->rec.members.empty() && admins_of(c->rec).empty()) {
    auto& heir = c->rec.members.front();
    heir.role = member_role::admin;
    c->standing.at(heir.user_id).role = member_role::admin;
    write_membership(c->standing.at(heir.user_id));
    append_system(*c, {"admins", who.user_id, admins_of(c->rec), {}}, c->member_ids);
  }
  announce_chat(*c, {who.user_id});
  after_commit([done] { done(chat::done{}); }, [done](const error& e) { done(e); });
}

void chat_owner::update_group(const session_info& who, group_update_request req,
                              reply_fn<chat_record> done) {
  error err;
  auto* c = load(req.chat, err);
  if (!c) return done(err);
  if (auto denied = require_admin(*c, who.user_id)) return done(*denied);
  for (const auto& u : req.admins_add)
    if (!member(*c, u)) return done(make_error(errc::bad_request, "not a member: " + u));
  for (const auto& u : req.admins_remove)
    if (!member(*c, u)) return done(make_error(errc::bad_request, "not a member: " + u));
  // Judged on the admin list after the change.
  auto admins = admins_of(c->rec);
  auto before = admins;
  for (const auto& u : req.admins_remove) std::erase(admins, u);
  for (const auto& u : req.admins_add)
    if (!contains(admins, u)) admins.push_back(u);
  if (admins.empty()) return done(make_error(errc::bad_request, "a group needs an admin"));
  bool title_changed = req.title && *req.title != c->rec.title;
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  bool admins_changed = sorted(admins) != sorted(before);

  if (title_changed || admins_changed) {
    snapshot_chat(*c);
    if (title_changed) {
      c->rec.title = *req.title;
      append_system(*c, {"title", who.user_id, {}, *req.title}, c->member_ids);
    }
    if (admins_changed) {
      for (auto& m : c->rec.members) {
        m.role = contains(admins, m.user_id) ? member_role::admin : member_role::member;
        auto& s = c->standing.at(m.user_id);
        if (s.role != m.role) {
          s.role = m.role;
          write_membership(s);
        }
      }
      append_system(*c, {"admins", who.user_id, admins_of(c->rec), {}}, c->member_ids);
    }
    announce_chat(*c);
  }
  after_commit([done, rec = c->rec] { done(rec); }, [done](const error& e) { done(e); });
}

}  // namespace parley::chat
