#include "chat/chat_owner.hpp"

#include <algorithm>

#include "chat/keys.hpp"
#include "chat/media_access.hpp"
#include "util/clock.hpp"
#include "util/crypto.hpp"
#include "util/log.hpp"

namespace parley::chat {

namespace {

// What makes two sends with one cid "the same message" (PROTOCOL §4.3): text, media, reply_to.
content_fingerprint fingerprint_of(const send_request& req) {
  std::string canon;
  auto field = [&](std::string_view tag, std::string_view value) {
    canon.append(tag).append(std::to_string(value.size())).push_back(':');
    canon.append(value);
  };
  if (req.text) field("t", *req.text);
  if (req.media) {
    field("m", req.media->media_id);
    field("y", req.media->mime);
    field("s", std::to_string(req.media->size));
    if (req.media->name) field("n", *req.media->name);
  }
  if (req.reply_to) field("r", std::to_string(*req.reply_to));
  return util::fingerprint(canon);
}

// The last seq before the user joined: messages up to it were never the user's to see.
seq_t before_joining(const membership_record& m) { return m.joined_seq > 0 ? m.joined_seq - 1 : 0; }

}  // namespace

chat_owner::chat_owner(std::size_t shard, store& db, scheduler& sched, const codec& enc,
                       delivery_hub& hub, inflight_cids& inflight, batch_writer& writer)
    : shard_(shard),
      db_(db),
      sched_(sched),
      codec_(enc),
      hub_(hub),
      inflight_(inflight),
      writer_(writer),
      gathering_(std::make_unique<pending_batch>()) {}

chat_owner::~chat_owner() = default;

chat_owner::cached_chat* chat_owner::load(const std::string& chat_id, error& err) {
  if (auto it = chats_.find(chat_id); it != chats_.end()) {
    use(it->second);
    return it->second.chat.get();
  }
  auto rec = db_.find_chat(chat_id);
  if (!rec) {
    err = rec.err();
    return nullptr;
  }
  if (!*rec) {
    err = make_error(errc::forbidden, "not a member of this chat");
    return nullptr;
  }
  auto c = std::make_unique<cached_chat>();
  c->rec = std::move(**rec);
  auto ids = std::make_shared<std::vector<std::string>>();
  for (const auto& m : c->rec.members) {
    auto standing = db_.find_membership(m.user_id, chat_id);
    if (!standing) {
      err = standing.err();
      return nullptr;
    }
    membership_record s = standing->value_or(membership_record{});
    s.user_id = m.user_id;
    s.chat_id = chat_id;
    s.role = m.role;
    c->standing.emplace(m.user_id, std::move(s));
    ids->push_back(m.user_id);
  }
  c->member_ids = std::move(ids);
  return &remember(chat_id, std::move(c));
}

chat_owner::cached_chat& chat_owner::remember(const std::string& chat_id,
                                              std::unique_ptr<cached_chat> c) {
  auto& slot = chats_.emplace(chat_id, cache_slot{std::move(c)}).first->second;
  use(slot);
  return *slot.chat;
}

void chat_owner::use(cache_slot& slot) {
  slot.used_in = generation_;
  // Membership changes since the last use are counted now.
  const std::size_t members = slot.chat->rec.members.size();
  cached_members_ = cached_members_ - slot.weight + members;
  slot.weight = members;
}

void chat_owner::evict_if_over_budget() {
  if (cached_members_ <= opts_.max_cached_members) return;
  // A pass that could not get under the target (the chats in use alone are over it) is not
  // tried again for a while: it would scan every chat at every flush.
  if (generation_ < next_eviction_) return;
  // Rare (each pass frees a quarter of the budget), so a scan and a sort are fine.
  std::vector<std::pair<std::uint64_t, const std::string*>> idle;
  for (const auto& [id, slot] : chats_)
    if (slot.used_in + 2 <= generation_) idle.emplace_back(slot.used_in, &id);
  std::sort(idle.begin(), idle.end());
  const std::size_t target = opts_.max_cached_members / 4 * 3;
  for (const auto& [used_in, id] : idle) {
    if (cached_members_ <= target) break;
    auto it = chats_.find(*id);
    cached_members_ -= it->second.weight;
    chats_.erase(it);
  }
  if (cached_members_ > target) next_eviction_ = generation_ + kEvictionBackoff;
}

membership_record* chat_owner::member(cached_chat& c, const std::string& user_id) {
  auto it = c.standing.find(user_id);
  return it == c.standing.end() ? nullptr : &it->second;
}

void chat_owner::touch_chat(cached_chat& c, bool created) {
  auto& b = *gathering_;
  auto [it, first] =
      b.undo_chats.try_emplace(c.rec.id, pending_batch::chat_undo{c.rec.last_seq, created, {}});
  if (first) b.touched_chats.push_back(c.rec.id);
}

void chat_owner::snapshot_chat(cached_chat& c) {
  touch_chat(c);
  auto& undo = gathering_->undo_chats.at(c.rec.id);
  if (!undo.created && !undo.snapshot) undo.snapshot = std::make_unique<cached_chat>(c);
}

void chat_owner::write_membership(const membership_record& m) {
  gathering_->memberships_to_write.insert_or_assign(pair_key(m.user_id, m.chat_id), m);
}

void chat_owner::touch_membership(const membership_record& m) {
  auto key = pair_key(m.user_id, m.chat_id);
  auto& undo = gathering_->undo_members;
  if (undo.contains(key)) return;
  // A member being created in this batch has no old state: its chat's undo removes it.
  undo.emplace(std::move(key), m);
}

void chat_owner::for_each_pending_message(
    const std::string& chat, seq_t from, seq_t to,
    const std::function<void(const message_record&)>& fn) const {
  for (const auto* b : {writing_.get(), gathering_.get()}) {  // in seq order
    if (!b) continue;
    for (const auto& m : b->writes.messages)
      if (m.chat_id == chat && m.seq >= from && m.seq <= to) fn(m);
  }
}

void chat_owner::after_commit(std::function<void()> on_ok,
                              std::function<void(const error&)> on_fail) {
  gathering_->completions.push_back({std::move(on_ok), std::move(on_fail)});
  schedule_flush();
}

void chat_owner::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // Posted behind everything already queued on this shard: the batch holds all the work that
  // arrived in this turn of the loop.
  sched_.post(shard_, [this] { flush(); });
}

void chat_owner::flush() {
  flush_scheduled_ = false;
  if (writing_ || gathering_->empty()) return;  // finished() submits it after the one in flight

  auto& b = *gathering_;
  // A chat's record is written when the chat is created or its members or title change; a send
  // only appends a message, whose seq the store reports as the chat's last (store::find_chat).
  // (A 256-member group's record is ~7 KB: rewriting it for every batch was most of the bytes
  // written.)
  for (const auto& id : b.touched_chats) {
    const auto& undo = b.undo_chats.at(id);
    if (undo.created || undo.snapshot) b.writes.chats.push_back(chats_.at(id).chat->rec);
  }
  // Memberships as they stand now; a member who left is written as recorded at departure.
  for (const auto& [key, old] : b.undo_members) b.memberships_to_write.try_emplace(key);
  for (auto& [key, recorded] : b.memberships_to_write) {
    auto sep = key.find('\0');
    auto& c = *chats_.at(key.substr(sep + 1)).chat;
    auto current = c.standing.find(key.substr(0, sep));
    b.writes.memberships.push_back(current != c.standing.end() ? current->second : recorded);
  }
  for (const auto& [key, seq] : b.cursors) {
    auto sep = key.find('\0');
    b.writes.cursors.push_back({key.substr(0, sep), key.substr(sep + 1), seq});
  }

  writing_ = std::move(gathering_);
  gathering_ = spare_ ? std::move(spare_) : std::make_unique<pending_batch>();
  ++generation_;
  evict_if_over_budget();
  if (writing_->writes.empty()) {
    finished(ok_status());  // nothing to write (a receipts query, a retry answered dup)
    return;
  }
  writer_.submit(writing_->writes, [this](status written) { finished(std::move(written)); });
}

void chat_owner::finished(status written) {
  auto b = std::move(writing_);
  for (const auto& [user, cid] : b->claimed_cids) inflight_.release(user, cid);
  if (written) {
    if (!b->deliveries.empty())
      hub_.publish(std::make_shared<const std::vector<delivery>>(std::move(b->deliveries)));
    for (auto& c : b->completions) c.on_ok();
  } else {
    util::log_warn("store write of {} messages failed: {}", b->writes.messages.size(),
                   written.err().message);
    error failure = make_error(errc::unavailable, "storage failed; nothing was done");
    // The gathering batch was built on top of the failed one (its seqs follow): undone first,
    // newest first, so that both come back to the state before the failed batch.
    for (const auto& [user, cid] : gathering_->claimed_cids) inflight_.release(user, cid);
    undo(*gathering_, failure);
    gathering_->clear();
    undo(*b, failure);
  }
  b->clear();
  spare_ = std::move(b);
  if (!gathering_->empty()) flush();
}

void chat_owner::undo(pending_batch& b, const error& failure) {
  for (auto& [id, undo] : b.undo_chats) {
    if (undo.created) {
      if (auto it = chats_.find(id); it != chats_.end()) {
        cached_members_ -= it->second.weight;
        chats_.erase(it);
      }
      continue;
    }
    auto& c = *chats_.at(id).chat;
    // The snapshot was taken at the batch's first membership change, maybe after sends of the
    // same batch had moved last_seq: restore that from before the batch too. (The next use()
    // counts the restored members in the cache's budget.)
    if (undo.snapshot) c = std::move(*undo.snapshot);
    c.rec.last_seq = undo.last_seq;
    c.recent.truncate(undo.last_seq);  // its seqs will be given again
  }
  for (const auto& [key, old] : b.undo_members) {
    auto sep = key.find('\0');
    auto chat = chats_.find(key.substr(sep + 1));
    if (chat == chats_.end() || !old) continue;
    auto& standing = chat->second.chat->standing;
    auto member = standing.find(key.substr(0, sep));
    if (member != standing.end()) member->second = *old;
  }
  for (auto& c : b.completions) c.on_fail(failure);
}

void chat_owner::open_direct(const session_info& who, const std::string& chat_id,
                             const std::string& peer, reply_fn<chat_record> done) {
  error err;
  if (auto* c = load(chat_id, err)) {
    // Answered after the batch: the chat may have been created in it and not be durable yet.
    after_commit([done, rec = c->rec] { done(rec); }, [done](const error& e) { done(e); });
    return;
  }
  if (err.code != errc::forbidden) return done(err);  // the store failed

  auto c = std::make_unique<cached_chat>();
  c->rec.id = chat_id;
  c->rec.kind = chat_kind::direct;
  c->rec.created = util::now_ms();
  c->rec.members = {{who.user_id, member_role::member}, {peer, member_role::member}};
  auto ids = std::make_shared<std::vector<std::string>>();
  for (const auto& m : c->rec.members) {
    c->standing.emplace(m.user_id, membership_record{.user_id = m.user_id,
                                                     .chat_id = chat_id,
                                                     .role = m.role,
                                                     .joined_seq = 1});
    ids->push_back(m.user_id);
  }
  c->member_ids = std::move(ids);
  auto& cached = remember(chat_id, std::move(c));
  touch_chat(cached, /*created=*/true);
  for (auto& [user, standing] : cached.standing) {
    gathering_->undo_members.emplace(pair_key(user, chat_id), std::nullopt);
  }
  after_commit([done, rec = cached.rec] { done(rec); }, [done](const error& e) { done(e); });
}

void chat_owner::send(const session_info& who, send_request req, reply_fn<send_result> done) {
  const auto fp = fingerprint_of(req);
  auto key = pair_key(who.user_id, req.cid);
  auto conflict = [&] {
    done(make_error(errc::conflict, "this cid was already used for a different message"));
  };

  // 1. A retry of a send not yet in the store (this batch or the one in flight): answered with
  //    it, by the outcome of the batch that holds it.
  if (auto [holder, first] = find_pending(&pending_batch::sends, key); first) {
    if (first->chat != req.chat || first->fingerprint != fp) return conflict();
    holder->completions.push_back(
        {[done, r = send_result{first->chat, first->seq, first->ts, true}] { done(r); },
         [done](const error& e) { done(e); }});
    if (holder == gathering_.get()) schedule_flush();
    return;
  }
  // 2. The same cid in flight to another chat, on another shard.
  auto claim = inflight_.try_claim(who.user_id, req.cid, req.chat);
  if (claim == inflight_cids::claim::other_chat_in_flight) return conflict();
  bool claimed = claim == inflight_cids::claim::claimed;
  auto fail = [&](error e) {
    if (claimed) inflight_.release(who.user_id, req.cid);
    done(std::move(e));
  };
  // 3. A retry of a committed send. Checked before membership: a retry after leaving answers
  //    dup, as before (PROTOCOL §4.6).
  auto earlier = db_.find_dedup(who.user_id, req.cid);
  if (!earlier) return fail(earlier.err());
  if (*earlier) {
    const auto& d = **earlier;
    if (d.chat_id != req.chat || d.fingerprint != fp)
      return fail(make_error(errc::conflict, "this cid was already used for a different message"));
    if (claimed) inflight_.release(who.user_id, req.cid);
    return done(send_result{d.chat_id, d.seq, d.ts, true});
  }
  // 4. Membership and references.
  error err;
  auto* c = load(req.chat, err);
  if (!c) return fail(err);
  auto* standing = member(*c, who.user_id);
  if (!standing) return fail(make_error(errc::forbidden, "not a member of this chat"));
  if (req.reply_to &&
      (*req.reply_to < standing->joined_seq || *req.reply_to > c->rec.last_seq)) {
    return fail(make_error(errc::bad_request, "reply_to is not an earlier message of this chat"));
  }
  if (req.media) {
    // A store read on the owner shard, like the dedup lookup above; only media sends pay it.
    if (auto usable = check_media_for_send(db_, who.user_id, *req.media); !usable)
      return fail(usable.err());
  }

  // 5. Accept: assign the next seq and encode the message once.
  touch_chat(*c);
  message msg;
  msg.chat = req.chat;
  msg.seq = ++c->rec.last_seq;
  msg.ts = util::now_ms();
  msg.from = who.user_id;
  msg.cid = req.cid;
  msg.kind = req.media ? message_kind::media : message_kind::text;
  msg.text = std::move(req.text);
  msg.media = std::move(req.media);
  msg.reply_to = req.reply_to;
  auto encoded = codec_.encode_message(msg);

  auto& b = *gathering_;
  b.deliveries.push_back({msg.chat, msg.seq, codec_.message_event(encoded), c->member_ids,
                          who.device_id, /*message=*/true});
  b.writes.messages.push_back({msg.chat, msg.seq, msg.ts, who.user_id, who.device_id, msg.kind,
                               std::move(encoded)});
  c->recent.grow_to(recent_senders::capacity_for(c->rec.members.size()));
  c->recent.append(msg.seq, who.user_id, /*system=*/false);
  b.writes.dedups.push_back({who.user_id, req.cid, msg.chat, msg.seq, msg.ts, fp});
  // The chat now carries the media: its members may fetch it (in the same atomic write).
  if (msg.media) b.writes.media_links.push_back({msg.media->media_id, msg.chat});
  b.sends.emplace(std::move(key), pending_send{msg.chat, fp, msg.seq, msg.ts});
  if (claimed) b.claimed_cids.emplace_back(who.user_id, req.cid);
  after_commit([done, r = send_result{msg.chat, msg.seq, msg.ts, false}] { done(r); },
               [done](const error& e) { done(e); });
}

void chat_owner::ack(const session_info& who, const std::string& chat_id, seq_t seq,
                     reply_fn<done> done) {
  error err;
  auto* c = load(chat_id, err);
  if (!c) return done(err);
  seq_t cap = c->rec.last_seq;
  auto* standing = member(*c, who.user_id);
  if (!standing) {
    // A departed member may still ack up to the message that recorded its departure (which
    // may be in this very batch or the one in flight, not yet in the store).
    std::optional<membership_record> past;
    if (auto [b, pending] = find_pending(&pending_batch::memberships_to_write,
                                         pair_key(who.user_id, chat_id));
        pending) {
      past = *pending;
    } else {
      auto stored = db_.find_membership(who.user_id, chat_id);
      if (!stored) return done(stored.err());
      past = std::move(*stored);
    }
    if (!past || past->left_seq == 0)
      return done(make_error(errc::forbidden, "not a member of this chat"));
    cap = std::min(cap, past->left_seq);
  }
  seq = std::min(seq, cap);
  if (seq > 0) {
    auto key = pair_key(who.device_id, chat_id);
    seq_t current = 0;
    if (auto [b, pending] = find_pending(&pending_batch::cursors, key); pending) {
      current = *pending;
    } else {
      auto stored = db_.find_cursor(who.device_id, chat_id);
      if (!stored) return done(stored.err());
      current = stored->value_or(0);
    }
    if (seq > current) gathering_->cursors[key] = seq;
    // The user's delivered cursor: the highest of its devices, and at least its read cursor.
    if (standing) {
      // Receipts only for what the user could see: from its joining on.
      seq_t before = std::max({standing->delivered_seq, standing->read_seq,
                               before_joining(*standing)});
      if (seq > before) {
        if (auto queued = queue_receipts(*c, who.user_id, "delivered", before, seq); !queued)
          return done(queued.err());
        touch_membership(*standing);
        standing->delivered_seq = seq;
      }
    }
  }
  // Answered after the batch, so that an ok never precedes the durability of what it confirms.
  after_commit([done] { done(chat::done{}); }, [done](const error& e) { done(e); });
}

void chat_owner::read(const session_info& who, const std::string& chat_id, seq_t seq,
                      reply_fn<done> done) {
  error err;
  auto* c = load(chat_id, err);
  if (!c) return done(err);
  auto* standing = member(*c, who.user_id);
  if (!standing) return done(make_error(errc::forbidden, "not a member of this chat"));
  seq = std::min(seq, c->rec.last_seq);
  if (seq > standing->read_seq) {
    // A read that also raises the delivered cursor sends only the read receipt.
    seq_t from = std::max(standing->read_seq, before_joining(*standing));
    if (auto queued = queue_receipts(*c, who.user_id, "read", from, seq); !queued)
      return done(queued.err());
    touch_membership(*standing);
    standing->read_seq = seq;
    standing->delivered_seq = std::max(standing->delivered_seq, seq);
    auto self = std::make_shared<const std::vector<std::string>>(1, who.user_id);
    gathering_->deliveries.push_back({chat_id, seq, codec_.read_sync_event(chat_id, seq),
                                      std::move(self), who.device_id});
  }
  after_commit([done] { done(chat::done{}); }, [done](const error& e) { done(e); });
}

status chat_owner::queue_receipts(cached_chat& c, const std::string& user, std::string_view kind,
                                  seq_t from, seq_t to) {
  // The senders of the messages newly covered; system messages have no receipts. Messages of
  // the batches not yet written are not in the store: look at them too.
  std::vector<std::string> senders;
  auto note = [&](std::string_view sender) {
    if (sender == user || std::find(senders.begin(), senders.end(), sender) != senders.end())
      return;
    // Only current members hear of it: a departed user gets nothing after its departure.
    if (c.standing.contains(std::string(sender))) senders.emplace_back(sender);
  };
  // The latest seqs from the chat's recent senders (written or not); older ones from the store
  // and the batches.
  seq_t known = c.recent.first();
  if (known == 0 || from + 1 < known) {
    seq_t older = known == 0 ? to : std::min(to, known - 1);
    auto scanned = db_.scan_messages(c.rec.id, from + 1, older, false, [&](const message_view& m) {
      if (m.kind != message_kind::system) note(m.from_user);
      return true;
    });
    if (!scanned) return scanned;
    for_each_pending_message(c.rec.id, from + 1, older, [&](const message_record& m) {
      if (m.kind != message_kind::system) note(m.from_user);
    });
  }
  c.recent.for_each_sender(from + 1, to, note);
  if (senders.empty()) return ok_status();
  gathering_->deliveries.push_back({c.rec.id, to, codec_.receipt_event(c.rec.id, user, kind, to),
                         std::make_shared<const std::vector<std::string>>(std::move(senders)),
                         {}});
  return ok_status();
}

void chat_owner::receipts(const session_info& who, const std::string& chat_id, seq_t seq,
                          reply_fn<receipts_result> done) {
  error err;
  auto* c = load(chat_id, err);
  if (!c) return done(err);
  if (!member(*c, who.user_id)) return done(make_error(errc::forbidden, "not a member of this chat"));
  receipts_result out;
  // System messages have no receipts (PROTOCOL §4.5): nobody is listed for them.
  bool system = false, pending = false;
  for_each_pending_message(chat_id, seq, seq, [&](const message_record& m) {
    pending = true;
    system = m.kind == message_kind::system;
  });
  if (!pending && seq >= 1 && seq <= c->rec.last_seq) {
    auto stored = db_.find_message(chat_id, seq);
    if (!stored) return done(stored.err());
    system = *stored && (*stored)->kind == message_kind::system;
  }
  for (const auto& m : c->rec.members) {
    if (system) break;
    const auto& s = c->standing.at(m.user_id);
    if (seq < s.joined_seq) continue;  // never saw it
    if (std::max(s.delivered_seq, s.read_seq) >= seq) out.delivered.push_back(m.user_id);
    if (s.read_seq >= seq) out.read.push_back(m.user_id);
  }
  // Answered after the batch: cursors moved in it are reported only once durable.
  after_commit([done, out] { done(out); }, [done](const error& e) { done(e); });
}

void chat_owner::typing(const session_info& who, const std::string& chat_id, bool on,
                        reply_fn<done> done) {
  error err;
  auto* c = load(chat_id, err);
  if (!c) return done(err);
  if (!member(*c, who.user_id)) return done(make_error(errc::forbidden, "not a member of this chat"));
  auto others = std::make_shared<std::vector<std::string>>();
  for (const auto& id : *c->member_ids)
    if (id != who.user_id) others->push_back(id);
  // Not stored, so not part of a batch: relayed right away.
  auto batch = std::make_shared<std::vector<delivery>>();
  batch->push_back({chat_id, 0, codec_.typing_event(chat_id, who.user_id, on), std::move(others),
                    who.device_id});
  hub_.publish(std::move(batch));
  done(chat::done{});
}

}  // namespace parley::chat
