// net::shard_poller — readiness of a shard's WebSocket sockets, from one epoll set of its own.
//
// Why not Asio's per-socket waits: Asio's epoll reactor never tries a readiness wait at once, so
// every `async_wait` re-arms the socket with epoll_ctl(MOD), and each wait is an operation of
// ~100 bytes plus the reactor's per-socket state (~170 bytes) held for the connection's whole
// life. At 20 000 messages/s that was one epoll_ctl and one FIONREAD ioctl per message read, and
// ~290 bytes of every idle connection. Here each socket is added once, edge-triggered, with a
// pointer to its owner; the set's own descriptor is the only thing Asio waits on, so a loop
// wake-up costs one epoll_wait (and Asio's one re-arm) for every socket that became ready.
//
// Contract with the owners: a socket's events are reported until remove() (or its close); an
// owner must read until EAGAIN, or until it has reason to stop and will read again on its own,
// because an edge is reported once. Reported events may be stale (a socket that became ready
// and was read before its report arrived): owners treat them as hints.
//
// Thread safety: none; everything runs on the shard that owns the poller.
#pragma once

#include <sys/epoll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <functional>
#include <vector>

namespace parley::net {

class shard_poller {
 public:
  // Runs for every reported socket: its owner (as given to add) and its epoll events. The owner
  // must still be valid: remove() a socket before its owner goes away.
  using dispatch_fn = std::function<void(void* owner, std::uint32_t events)>;

  // Throws std::system_error when the epoll set cannot be created.
  shard_poller(boost::asio::io_context& context, dispatch_fn dispatch);
  ~shard_poller();
  shard_poller(const shard_poller&) = delete;
  shard_poller& operator=(const shard_poller&) = delete;

  boost::asio::io_context& context() { return context_; }

  // Watches `fd` for input (and hang-up / error) until remove(). False (errno set) on failure.
  bool add(int fd, void* owner);
  // Adds or drops the watch for writability (for a socket whose send buffer filled up).
  bool watch_writable(int fd, void* owner, bool writable);
  // Stops watching `fd`; the owner gets no report after this, even from a batch in progress.
  void remove(int fd, void* owner);

 private:
  void arm();
  void drain();

  boost::asio::io_context& context_;
  dispatch_fn dispatch_;
  boost::asio::posix::stream_descriptor set_;  // the epoll set, as Asio sees it
  // The owners removed while a batch is being dispatched: their later reports are skipped.
  std::vector<void*> removed_in_batch_;
  bool dispatching_ = false;
};

}  // namespace parley::net
