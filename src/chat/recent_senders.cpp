#include "chat/recent_senders.hpp"

#include <algorithm>

namespace parley::chat {

void recent_senders::append(seq_t seq, std::string_view user, bool system) {
  auto slot = system ? kSystem : slot_of(user);  // first: it may forget every seq known
  if (count_ != 0 && seq != last() + 1) {
    count_ = 0;
    slots_.clear();
  }
  if (count_ == 0) {
    first_ = seq;
    head_ = 0;
  }
  if (count_ < slots_.size()) {
    slots_[(head_ + count_) % slots_.size()] = slot;
    ++count_;
  } else if (slots_.size() < capacity_) {
    slots_.push_back(slot);  // not wrapped yet: head_ is 0
    ++count_;
  } else {
    slots_[head_] = slot;  // the oldest seq makes room
    head_ = (head_ + 1) % slots_.size();
    ++first_;
  }
}

void recent_senders::grow_to(std::size_t capacity) {
  if (capacity <= capacity_) return;
  capacity_ = capacity;
  // Unwrap the ring, so that it grows again by appending.
  std::rotate(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(head_), slots_.end());
  slots_.resize(count_);
  head_ = 0;
}

void recent_senders::truncate(seq_t last_kept) {
  if (count_ == 0 || last_kept >= last()) return;
  count_ = last_kept < first_ ? 0 : static_cast<std::size_t>(last_kept - first_ + 1);
}

std::uint8_t recent_senders::slot_of(std::string_view user) {
  for (std::size_t i = names_.size(); i-- > 0;)  // the newest names first: the likely ones
    if (names_[i] == user) return static_cast<std::uint8_t>(i);
  if (names_.size() == kSystem) {
    // Full: keep only the names the known seqs still refer to. If they are too many to rename
    // (a big chat with many senders of late), the known seqs are forgotten instead: receipts
    // then read them from the store.
    std::vector<std::string> kept;
    std::vector<std::uint8_t> renamed(names_.size(), kSystem);
    for (std::size_t k = 0; k < count_; ++k) {
      auto& slot = slots_[(head_ + k) % slots_.size()];
      if (slot == kSystem) continue;
      if (renamed[slot] == kSystem) {
        renamed[slot] = static_cast<std::uint8_t>(kept.size());
        kept.push_back(std::move(names_[slot]));
      }
      slot = renamed[slot];
    }
    names_ = std::move(kept);
    if (names_.size() >= kSystem - 1) {
      names_.clear();
      slots_.clear();
      count_ = 0;
      head_ = 0;
    }
  }
  names_.emplace_back(user);
  return static_cast<std::uint8_t>(names_.size() - 1);
}

}  // namespace parley::chat
