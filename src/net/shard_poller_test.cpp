// net::shard_poller on socket pairs: reports, edge-triggering, writability, and removal while a
// batch of reports is being dispatched.
#include "net/shard_poller.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace parley::net {
namespace {

using namespace std::chrono_literals;

struct socket_pair {
  int ours = -1, theirs = -1;
  socket_pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0) {
      ours = fds[0];
      theirs = fds[1];
    }
  }
  ~socket_pair() {
    if (ours >= 0) ::close(ours);
    if (theirs >= 0) ::close(theirs);
  }
};

struct report {
  void* owner;
  std::uint32_t events;
};

class shard_poller_test : public ::testing::Test {
 protected:
  boost::asio::io_context io;
  std::vector<report> reports;
  std::function<void(void*, std::uint32_t)> on_report;  // optional extra action
  shard_poller poller{io, [this](void* owner, std::uint32_t events) {
                        reports.push_back({owner, events});
                        if (on_report) on_report(owner, events);
                      }};

  // Runs the loop until it is idle for a moment.
  void settle() {
    io.restart();
    io.run_for(50ms);
  }
};

int owner_a, owner_b;  // addresses used as owners

TEST_F(shard_poller_test, reports_a_socket_once_per_arrival_of_bytes) {
  socket_pair p;
  ASSERT_GE(p.ours, 0);
  ASSERT_TRUE(poller.add(p.ours, &owner_a));
  settle();
  EXPECT_TRUE(reports.empty());  // nothing to read yet

  ASSERT_EQ(::write(p.theirs, "hi", 2), 2);
  settle();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].owner, &owner_a);
  EXPECT_TRUE(reports[0].events & EPOLLIN);

  // Edge-triggered: bytes left unread are not reported again...
  settle();
  EXPECT_EQ(reports.size(), 1u);
  // ...but new bytes are, read or not.
  ASSERT_EQ(::write(p.theirs, "again", 5), 5);
  settle();
  EXPECT_EQ(reports.size(), 2u);
}

TEST_F(shard_poller_test, reports_the_peer_closing) {
  socket_pair p;
  ASSERT_TRUE(poller.add(p.ours, &owner_a));
  ::close(p.theirs);
  p.theirs = -1;
  settle();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].events & (EPOLLRDHUP | EPOLLHUP));
}

TEST_F(shard_poller_test, reports_writability_only_while_asked) {
  socket_pair p;
  ASSERT_TRUE(poller.add(p.ours, &owner_a));
  // Fill the send buffer.
  std::string chunk(64 * 1024, 'x');
  while (::write(p.ours, chunk.data(), chunk.size()) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  ASSERT_TRUE(poller.watch_writable(p.ours, &owner_a, true));
  settle();
  EXPECT_TRUE(reports.empty());  // still full

  // The peer reads everything: the socket is writable again.
  char sink[64 * 1024];
  while (::read(p.theirs, sink, sizeof sink) > 0) {
  }
  settle();
  ASSERT_FALSE(reports.empty());
  EXPECT_TRUE(reports.back().events & EPOLLOUT);

  // Asked to stop: writability is no longer reported, input still is.
  reports.clear();
  ASSERT_TRUE(poller.watch_writable(p.ours, &owner_a, false));
  ASSERT_EQ(::write(p.theirs, "x", 1), 1);
  settle();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_FALSE(reports[0].events & EPOLLOUT);
  EXPECT_TRUE(reports[0].events & EPOLLIN);
}

TEST_F(shard_poller_test, watching_writability_of_a_writable_socket_reports_it_at_once) {
  socket_pair p;
  ASSERT_TRUE(poller.add(p.ours, &owner_a));
  ASSERT_TRUE(poller.watch_writable(p.ours, &owner_a, true));
  settle();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].events & EPOLLOUT);
}

TEST_F(shard_poller_test, an_owner_removed_during_a_batch_gets_no_later_report_of_it) {
  socket_pair p, q;
  ASSERT_TRUE(poller.add(p.ours, &owner_a));
  ASSERT_TRUE(poller.add(q.ours, &owner_b));
  // Whichever is reported first removes the other, as a connection ending another would.
  on_report = [&](void* owner, std::uint32_t) {
    if (owner == &owner_a) poller.remove(q.ours, &owner_b);
    if (owner == &owner_b) poller.remove(p.ours, &owner_a);
  };
  ASSERT_EQ(::write(p.theirs, "1", 1), 1);
  ASSERT_EQ(::write(q.theirs, "2", 1), 1);
  settle();  // both are ready before the loop runs: one batch
  ASSERT_EQ(reports.size(), 1u);

  // And a removed socket is not reported any more.
  on_report = nullptr;
  reports.clear();
  ASSERT_EQ(::write(p.theirs, "1", 1), 1);
  ASSERT_EQ(::write(q.theirs, "2", 1), 1);
  settle();
  EXPECT_EQ(reports.size(), 1u);
}

TEST_F(shard_poller_test, adding_a_bad_descriptor_fails) {
  EXPECT_FALSE(poller.add(-1, &owner_a));
  EXPECT_EQ(errno, EBADF);
}

}  // namespace
}  // namespace parley::net
