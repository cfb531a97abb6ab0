// recent_senders — who sent each of a chat's latest messages, kept by the chat's owner.
//
// A cursor move (ack, read) sends a receipt to every user whose messages it newly covers
// (PROTOCOL §4.5), so the owner must know the senders of the seqs it covers. Reading those
// messages back from the store cost as much as delivering them (every member acks every
// message of a group, so a group of 256 read each message back 255 times). The senders of the
// latest seqs are kept here instead (a few hundred); older ones are still read from the store.
//
// It knows a contiguous run of seqs ending with the newest it was told of, including
// messages not written yet (the owner truncates it when it undoes a failed batch).
//
// Memory: one byte per seq known (growing to its capacity) and each distinct sender's id once.
#pragma once

#include <algorithm>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/store.hpp"

namespace parley::chat {

class recent_senders {
 public:
  // How many seqs it keeps: a cursor move of a busy chat lags its newest seq by the messages
  // sent while the acks travel, and every member acks, so a bigger chat keeps more.
  static constexpr std::size_t min_capacity = 128;
  static constexpr std::size_t max_capacity = 1024;
  static constexpr std::size_t capacity_for(std::size_t members) {
    return std::clamp<std::size_t>(members * 16, min_capacity, max_capacity);
  }
  std::size_t capacity() const { return capacity_; }
  // Lets it keep up to `capacity` seqs (it never shrinks).
  void grow_to(std::size_t capacity);

  // Records the sender of `seq`; `system` messages have no sender to receive receipts. A seq
  // that does not follow the newest one known starts the run anew.
  void append(seq_t seq, std::string_view user, bool system);
  // Forgets every seq above `last`.
  void truncate(seq_t last);
  // The lowest seq known, or 0 when none is.
  seq_t first() const { return count_ == 0 ? 0 : first_; }
  seq_t last() const { return count_ == 0 ? 0 : first_ + count_ - 1; }

  // Calls fn(user) once for each distinct sender of the known seqs in [from, to], system
  // messages excepted.
  template <class Fn>
  void for_each_sender(seq_t from, seq_t to, Fn&& fn) const {
    if (count_ == 0) return;
    from = std::max(from, first_);
    to = std::min(to, last());
    std::bitset<256> seen;
    for (seq_t s = from; s <= to; ++s) {
      auto slot = slots_[index_of(s)];
      if (slot == kSystem || seen[slot]) continue;
      seen[slot] = true;
      fn(std::string_view(names_[slot]));
    }
  }

 private:
  static constexpr std::uint8_t kSystem = 0xff;
  std::size_t index_of(seq_t s) const { return (head_ + (s - first_)) % slots_.size(); }
  std::uint8_t slot_of(std::string_view user);

  seq_t first_ = 0;
  std::size_t count_ = 0;
  std::size_t capacity_ = min_capacity;
  std::size_t head_ = 0;               // the index of first_ in slots_ (a ring once full)
  std::vector<std::uint8_t> slots_;    // per seq: an index into names_, or kSystem
  std::vector<std::string> names_;     // the senders' user ids (at most 255)
};

}  // namespace parley::chat
