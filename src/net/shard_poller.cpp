#include "net/shard_poller.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <exception>
#include <system_error>

#include "util/log.hpp"

namespace parley::net {

namespace {

// Reports taken per wake-up; more stay in the set, which is then still readable, and Asio's
// re-arm of it wakes the loop again after the other work queued meanwhile.
constexpr int kEventsPerWakeup = 256;

int create_set() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  return fd;
}

// Edge-triggered: a socket is reported when it becomes readable (or writable, when asked), not
// on every wake-up while it stays so. EPOLLRDHUP reports the peer's shutdown even when no data
// comes with it.
constexpr std::uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;

}  // namespace

shard_poller::shard_poller(boost::asio::io_context& context, dispatch_fn dispatch)
    : context_(context), dispatch_(std::move(dispatch)), set_(context, create_set()) {
  arm();
}

shard_poller::~shard_poller() {
  boost::system::error_code ignored;
  set_.close(ignored);  // the pending wait completes with operation_aborted and touches nothing
}

bool shard_poller::add(int fd, void* owner) {
  epoll_event ev{};
  ev.events = kReadEvents;
  ev.data.ptr = owner;
  return ::epoll_ctl(set_.native_handle(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool shard_poller::watch_writable(int fd, void* owner, bool writable) {
  epoll_event ev{};
  ev.events = kReadEvents | (writable ? EPOLLOUT : 0u);
  ev.data.ptr = owner;
  // A modification re-checks the socket's state: one that is already writable (or readable) is
  // reported at once, so nothing that happened before this call is missed.
  return ::epoll_ctl(set_.native_handle(), EPOLL_CTL_MOD, fd, &ev) == 0;
}

void shard_poller::remove(int fd, void* owner) {
  epoll_event ignored{};
  ::epoll_ctl(set_.native_handle(), EPOLL_CTL_DEL, fd, &ignored);
  if (dispatching_) removed_in_batch_.push_back(owner);
}

void shard_poller::arm() {
  set_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                  [this](const boost::system::error_code& ec) {
                    if (ec == boost::asio::error::operation_aborted) return;  // being destroyed
                    if (ec) {
                      // Not expected of an epoll descriptor; without the wait no socket of the
                      // shard would be read again, so it is retried.
                      util::log_error("shard poller wait failed: {}", ec.message());
                    } else {
                      drain();
                    }
                    arm();
                  });
}

void shard_poller::drain() {
  std::array<epoll_event, kEventsPerWakeup> events;
  int n = ::epoll_wait(set_.native_handle(), events.data(), kEventsPerWakeup, 0);
  if (n <= 0) return;  // EINTR, or reported already by an earlier wake-up
  dispatching_ = true;
  for (int i = 0; i < n; ++i) {
    void* owner = events[static_cast<std::size_t>(i)].data.ptr;
    // An owner removed by an earlier report of this batch may be gone: skip it.
    if (!removed_in_batch_.empty() &&
        std::find(removed_in_batch_.begin(), removed_in_batch_.end(), owner) != removed_in_batch_.end())
      continue;
    // An edge is reported once: a report lost to an exception would leave its socket unread
    // for good, and one escaping here would lose the rest of the batch.
    try {
      dispatch_(owner, events[static_cast<std::size_t>(i)].events);
    } catch (const std::exception& e) {
      util::log_error("shard poller: a report's handler failed: {}", e.what());
    }
  }
  dispatching_ = false;
  removed_in_batch_.clear();
}

}  // namespace parley::net
