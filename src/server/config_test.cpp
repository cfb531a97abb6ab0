#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "server/config.hpp"

namespace parley::server {
namespace {

TEST(Config, DefaultsMatchTheDocumentation) {
  auto out = parse_command_line({});
  ASSERT_TRUE(out.cfg);
  EXPECT_EQ(out.cfg->listen_host, "0.0.0.0");
  EXPECT_EQ(out.cfg->listen_port, 8080);
  EXPECT_EQ(out.cfg->data_dir, "./parley-data");
  EXPECT_EQ(out.cfg->durability, durability_mode::sync);
  EXPECT_GE(out.cfg->threads, 1u);
  EXPECT_EQ(out.cfg->heartbeat_ms, 5000);
}

TEST(Config, FlagsOverrideTheFile) {
  std::string path = ::testing::TempDir() + "/parley_config_test.conf";
  {
    std::ofstream f(path);
    f << "# a comment\nlisten = 127.0.0.1:9000\ndurability = os  # trailing\nthreads=3\n";
  }
  auto out = parse_command_line({"--config", path, "--threads", "1", "--data-dir=/tmp/x"});
  ASSERT_TRUE(out.cfg) << out.message;
  EXPECT_EQ(out.cfg->listen_host, "127.0.0.1");
  EXPECT_EQ(out.cfg->listen_port, 9000);
  EXPECT_EQ(out.cfg->durability, durability_mode::os);
  EXPECT_EQ(out.cfg->threads, 1u);
  EXPECT_EQ(out.cfg->data_dir, "/tmp/x");
  std::remove(path.c_str());
}

TEST(Config, BadInputIsAClearError) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"--listen", "nope"},
           {"--listen", "1.2.3.4:99999"},
           {"--durability", "maybe"},
           {"--threads", "0"},
           {"--dedup-retention-days", "3"},
           {"--threads"},
           {"--bogus", "1"},
           {"stray"},
           {"--config", "/nonexistent/parley.conf"}}) {
    auto out = parse_command_line(args);
    EXPECT_FALSE(out.cfg) << args[0];
    EXPECT_EQ(out.exit_code, 2);
    EXPECT_NE(out.message.find("parleyd:"), std::string::npos);
  }
}

TEST(Config, EveryArgumentLimitHasAFlag) {
  auto out = parse_command_line({"--title-max-chars", "50", "--users-get-max", "10",
                                 "--presence-sub-max", "20", "--text-max-bytes", "100",
                                 "--max-group-members", "8", "--rate-per-sec", "0",
                                 "--chat-cache-members", "5000"});
  ASSERT_TRUE(out.cfg) << out.message;
  EXPECT_EQ(out.cfg->title_max_chars, 50u);
  EXPECT_EQ(out.cfg->users_get_max, 10u);
  EXPECT_EQ(out.cfg->presence_sub_max, 20u);
  EXPECT_EQ(out.cfg->text_max_bytes, 100u);
  EXPECT_EQ(out.cfg->max_group_members, 8u);
  EXPECT_EQ(out.cfg->rate_per_sec, 0);
  EXPECT_EQ(out.cfg->chat_cache_members, 5000u);
}

TEST(Config, HelpExitsZero) {
  auto out = parse_command_line({"--help"});
  EXPECT_FALSE(out.cfg);
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_NE(out.message.find("--durability"), std::string::npos);
}

}  // namespace
}  // namespace parley::server
