// blob/s3 against a real S3-API server (s3rver on loopback) and against a scripted fake one.
//
// s3rver: PARLEY_TEST_S3_ENDPOINT names a running server (credentials S3RVER / S3RVER), or the
// test starts one through scripts/s3rver.sh and stops it at exit (the server also exits by itself
// when this process is gone). A server that cannot be started fails every test that needs it;
// nothing is skipped. Every store gets a bucket of its own.
//
// The fake server (fake_s3 below) answers what a test scripts and records every request: it
// covers what s3rver cannot show (s3rver 3.7.1 answers AbortMultipartUpload with 405, never
// returns an error inside a 200, never throttles).
#include "blob/s3/s3_blob_store.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "blob/s3/s3_connection.hpp"
#include "blob/testing/blob_conformance.hpp"
#include "util/crypto.hpp"

namespace parley::blob::s3 {
namespace {

using chat::errc;
using namespace std::chrono_literals;

constexpr std::size_t k_mib = 1024 * 1024;

// ---- the s3rver this process uses ----

class s3rver_environment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (const char* given = std::getenv("PARLEY_TEST_S3_ENDPOINT"); given && *given) {
      endpoint_ = given;
      return;
    }
    std::string pattern =
        (std::filesystem::temp_directory_path() / "parley-s3rver-XXXXXX").string();
    if (!mkdtemp(pattern.data())) {
      failure_ = "mkdtemp failed";
      return;
    }
    state_dir_ = pattern;
    std::string command = "bash '" PARLEY_SOURCE_DIR "/scripts/s3rver.sh' start '" + state_dir_ +
                          "' " + std::to_string(getpid());
    FILE* out = popen(command.c_str(), "r");
    if (!out) {
      failure_ = "popen failed";
      return;
    }
    char line[256] = {};
    bool got = std::fgets(line, sizeof line, out) != nullptr;
    int status = pclose(out);
    std::string text = got ? line : "";
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (status != 0 || !text.starts_with("http://")) {
      failure_ = "scripts/s3rver.sh start failed (status " + std::to_string(status) +
                 "; see stderr above)";
      return;
    }
    endpoint_ = text;
  }

  void TearDown() override {
    if (state_dir_.empty()) return;
    std::string command =
        "bash '" PARLEY_SOURCE_DIR "/scripts/s3rver.sh' stop '" + state_dir_ + "'";
    if (std::system(command.c_str()) != 0) std::fprintf(stderr, "s3rver.sh stop failed\n");
    std::error_code ec;
    std::filesystem::remove_all(state_dir_, ec);
  }

  // "http://127.0.0.1:PORT", or empty (and failure() says why).
  static const std::string& endpoint() { return endpoint_; }
  static const std::string& failure() { return failure_; }

 private:
  static inline std::string endpoint_;
  static inline std::string failure_;
  std::string state_dir_;
};

[[maybe_unused]] const auto* const k_environment =
    ::testing::AddGlobalTestEnvironment(new s3rver_environment);

std::string fresh_bucket_name() {
  static std::atomic<int> counter{0};
  return "parley-" + std::to_string(getpid()) + "-" + std::to_string(++counter) + "-" +
         util::random_hex(4);
}

s3_config s3rver_config(const std::string& bucket, const std::string& extra_query = "") {
  std::string endpoint = s3rver_environment::endpoint();
  if (endpoint.empty()) {
    ADD_FAILURE() << "no s3rver: " << s3rver_environment::failure();
    endpoint = "http://127.0.0.1:1";  // every request fails: unavailable
  }
  auto config =
      parse_s3_url("s3://" + bucket + "?endpoint=" + endpoint + extra_query, "S3RVER", "S3RVER");
  EXPECT_TRUE(config.ok()) << config.err().message;
  return *config;
}

// Creates the bucket with a signed PUT /BUCKET.
void create_bucket(const s3_config& config) {
  s3_connection connection(config);
  auto r = connection.send({.method = "PUT"});
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_EQ(r->status, 200) << describe_status(*r);
}

// A fresh store on a bucket of its own, cutting objects into 5 MiB parts (S3's minimum) so that
// the suite's large object crosses into multipart.
struct s3rver_factory {
  std::unique_ptr<chat::blob_store> make() {
    util::init_crypto();
    auto config = s3rver_config(fresh_bucket_name());
    config.part_size = part_size();
    if (!s3rver_environment::endpoint().empty()) create_bucket(config);
    return std::make_unique<s3_blob_store>(config);
  }
  std::size_t part_size() const { return 5 * k_mib; }
};

}  // namespace
}  // namespace parley::blob::s3

namespace parley::blob::testing {
INSTANTIATE_TYPED_TEST_SUITE_P(s3, blob_conformance, ::testing::Types<s3::s3rver_factory>);
}  // namespace parley::blob::testing

namespace parley::blob::s3 {
namespace {

// ---- parse_s3_url ----

TEST(parse_s3_url, reads_every_parameter) {
  auto c = parse_s3_url(
      "s3://media-bucket?endpoint=http://127.0.0.1:9000&region=eu-west-1&path_style=false"
      "&prefix=parley/media/",
      "AK", "SK", "TOKEN");
  ASSERT_TRUE(c.ok()) << c.err().message;
  EXPECT_EQ(c->bucket, "media-bucket");
  EXPECT_EQ(c->scheme, "http");
  EXPECT_EQ(c->endpoint_host, "127.0.0.1:9000");
  EXPECT_EQ(c->region, "eu-west-1");
  EXPECT_FALSE(c->path_style);
  EXPECT_EQ(c->prefix, "parley/media/");
  EXPECT_EQ(c->creds.access_key_id, "AK");
  EXPECT_EQ(c->creds.secret_access_key, "SK");
  EXPECT_EQ(c->creds.session_token, "TOKEN");
  EXPECT_EQ(c->part_size, 8 * k_mib);
}

TEST(parse_s3_url, defaults_path_style_to_whether_an_endpoint_is_given) {
  auto aws = parse_s3_url("s3://b.with.dots", "AK", "SK");
  ASSERT_TRUE(aws.ok()) << aws.err().message;
  EXPECT_FALSE(aws->path_style);
  EXPECT_EQ(aws->region, "us-east-1");
  EXPECT_EQ(aws->endpoint_host, "");
  auto minio = parse_s3_url("s3://bucket?endpoint=https://minio.internal:9443/", "AK", "SK");
  ASSERT_TRUE(minio.ok()) << minio.err().message;
  EXPECT_TRUE(minio->path_style);
  EXPECT_EQ(minio->scheme, "https");
  EXPECT_EQ(minio->endpoint_host, "minio.internal:9443");
  auto forced = parse_s3_url("s3://bucket?path_style=true", "AK", "SK");
  ASSERT_TRUE(forced.ok());
  EXPECT_TRUE(forced->path_style);
}

TEST(parse_s3_url, decodes_percent_encoded_values_and_drops_default_ports) {
  auto c =
      parse_s3_url("s3://bucket?endpoint=http%3A%2F%2Flocalhost%3A80&prefix=a%2Fb%2F", "AK", "SK");
  ASSERT_TRUE(c.ok()) << c.err().message;
  EXPECT_EQ(c->endpoint_host, "localhost");  // what curl sends as Host, and what is signed
  EXPECT_EQ(c->prefix, "a/b/");
  auto tls = parse_s3_url("s3://bucket?endpoint=https://s3.example.com:443", "AK", "SK");
  ASSERT_TRUE(tls.ok());
  EXPECT_EQ(tls->endpoint_host, "s3.example.com");
  auto v6 = parse_s3_url("s3://bucket?endpoint=http://[::1]:9000", "AK", "SK");
  ASSERT_TRUE(v6.ok()) << v6.err().message;
  EXPECT_EQ(v6->endpoint_host, "[::1]:9000");
}

TEST(parse_s3_url, refuses_what_it_cannot_use_with_bad_request) {
  struct bad_case {
    std::string url;
    std::string says;
  };
  for (const auto& [url, says] : std::vector<bad_case>{
           {"http://bucket", "s3://"},
           {"s3://", "missing bucket"},
           {"s3://?endpoint=http://h", "missing bucket"},
           {"s3://bucket/some/prefix", "prefix"},
           {"s3://Bucket", "bad bucket"},
           {"s3://ab", "bad bucket"},
           {"s3://-bucket", "bad bucket"},
           {"s3://bu..cket", "bad bucket"},
           {"s3://bucket?endpoint=ftp://h", "http:// or https://"},
           {"s3://bucket?endpoint=127.0.0.1:9000", "http:// or https://"},
           {"s3://bucket?endpoint=http://h/base", "without a path"},
           {"s3://bucket?endpoint=http://", "bad endpoint"},
           {"s3://bucket?endpoint=http://h:0", "bad endpoint"},
           {"s3://bucket?endpoint=http://h:99999", "bad endpoint"},
           {"s3://bucket?endpoint=http://h%20x", "bad endpoint"},
           {"s3://bucket?region=US_EAST_1", "bad region"},
           {"s3://bucket?region=", "bad region"},
           {"s3://bucket?path_style=yes", "true or false"},
           {"s3://bucket?prefix=/abs/", "bad prefix"},
           {"s3://bucket?prefix=a//b/", "bad prefix"},
           {"s3://bucket?prefix=Upper/", "bad prefix"},
           {"s3://bucket?bucket=x", "unknown parameter"},
           {"s3://bucket?region=us-east-1&region=eu-west-1", "twice"},
           {"s3://bucket?prefix=%zz", "percent"},
       }) {
    auto c = parse_s3_url(url, "AK", "SK");
    ASSERT_FALSE(c.ok()) << url;
    EXPECT_EQ(c.err().code, errc::bad_request) << url;
    EXPECT_NE(c.err().message.find(says), std::string::npos) << url << ": " << c.err().message;
  }
  auto no_credentials = parse_s3_url("s3://bucket", "", "SK");
  ASSERT_FALSE(no_credentials.ok());
  EXPECT_EQ(no_credentials.err().code, errc::bad_request);
  EXPECT_NE(no_credentials.err().message.find("AWS_ACCESS_KEY_ID"), std::string::npos);
}

TEST(parse_s3_url, reads_credentials_from_the_environment) {
  setenv("AWS_ACCESS_KEY_ID", "ENVAK", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "ENVSK", 1);
  unsetenv("AWS_SESSION_TOKEN");
  auto c = parse_s3_url_from_environment("s3://bucket");
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  ASSERT_TRUE(c.ok()) << c.err().message;
  EXPECT_EQ(c->creds.access_key_id, "ENVAK");
  EXPECT_EQ(c->creds.secret_access_key, "ENVSK");
  EXPECT_EQ(c->creds.session_token, "");
  EXPECT_FALSE(parse_s3_url_from_environment("s3://bucket").ok());
}

// ---- addressing ----

TEST(locate, path_style_puts_the_bucket_in_the_path) {
  auto c = parse_s3_url("s3://media?endpoint=http://127.0.0.1:9000&prefix=p/", "AK", "SK");
  ASSERT_TRUE(c.ok());
  auto object = locate(*c, "p/m/a.b");
  EXPECT_EQ(object.host, "127.0.0.1:9000");
  EXPECT_EQ(object.path, "/media/p/m/a.b");
  EXPECT_EQ(object.url, "http://127.0.0.1:9000/media/p/m/a.b");
  auto bucket = locate(*c, "");
  EXPECT_EQ(bucket.path, "/media");
  EXPECT_EQ(bucket.url, "http://127.0.0.1:9000/media");
  EXPECT_EQ(endpoint_url(*c), "http://127.0.0.1:9000");
}

TEST(locate, virtual_hosted_puts_the_bucket_in_the_host) {
  auto c =
      parse_s3_url("s3://media?endpoint=http://s3.localhost:9000&path_style=false", "AK", "SK");
  ASSERT_TRUE(c.ok());
  auto object = locate(*c, "m/x");
  EXPECT_EQ(object.host, "media.s3.localhost:9000");
  EXPECT_EQ(object.path, "/m/x");
  EXPECT_EQ(object.url, "http://media.s3.localhost:9000/m/x");
  EXPECT_EQ(locate(*c, "").path, "/");
}

TEST(locate, aws_without_an_endpoint) {
  auto c = parse_s3_url("s3://media?region=eu-central-1", "AK", "SK");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(locate(*c, "m/x").url, "https://media.s3.eu-central-1.amazonaws.com/m/x");
  EXPECT_EQ(endpoint_url(*c), "https://s3.eu-central-1.amazonaws.com");
  c->path_style = true;
  EXPECT_EQ(locate(*c, "m/x").url, "https://s3.eu-central-1.amazonaws.com/media/m/x");
}

TEST(locate, encodes_the_path_the_way_it_is_signed) {
  s3_config c;
  c.bucket = "b";
  c.scheme = "http";
  c.endpoint_host = "h";
  c.path_style = true;
  EXPECT_EQ(locate(c, "a b/c+d").url, "http://h/b/a%20b/c%2Bd");
}

// ---- against s3rver: beyond the conformance suite ----

TEST(s3rver, describe_names_the_bucket_and_endpoint) {
  auto config = s3rver_config("some-bucket", "&prefix=p/");
  s3_blob_store store(config);
  EXPECT_EQ(store.describe(),
            "s3 bucket some-bucket at " + s3rver_environment::endpoint() + " under prefix p/");
}

// libcurl without any signing: what a browser does with a pre-signed URL.
struct plain_get {
  long status = 0;
  std::string body;
  std::string content_type;
  std::string content_disposition;
};

plain_get fetch(const std::string& url) {
  plain_get out;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char* data, std::size_t size, std::size_t n, void* user) {
        static_cast<plain_get*>(user)->body.append(data, size * n);
        return size * n;
      });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(
      curl, CURLOPT_HEADERFUNCTION, +[](char* data, std::size_t size, std::size_t n, void* user) {
        std::string line(data, size * n);
        auto* o = static_cast<plain_get*>(user);
        auto value = [&](std::size_t at) {
          std::string v = line.substr(at);
          while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
          while (!v.empty() && v.front() == ' ') v.erase(0, 1);
          return v;
        };
        std::string lower = line;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (lower.starts_with("content-type:")) o->content_type = value(13);
        if (lower.starts_with("content-disposition:")) o->content_disposition = value(20);
        return size * n;
      });
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &out);
  if (curl_easy_perform(curl) == CURLE_OK)
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
  curl_easy_cleanup(curl);
  return out;
}

TEST(s3rver, presigned_url_serves_the_bytes_with_the_overrides) {
  s3rver_factory factory;
  auto store = factory.make();
  auto data = testing::pattern_bytes(70'000, 3);
  testing::put(*store, "m/photo", data);
  chat::presign_request req{.expires_in_s = 300,
                            .content_type = "image/png",
                            .content_disposition = "attachment; filename=\"a b.png\""};
  auto url = store->presign_get("m/photo", req);
  ASSERT_TRUE(url.ok()) << url.err().message;
  ASSERT_TRUE(url->has_value());
  EXPECT_TRUE((*url)->starts_with(s3rver_environment::endpoint() + "/parley-")) << **url;
  EXPECT_NE((*url)->find("X-Amz-Expires=300&"), std::string::npos) << **url;
  EXPECT_NE((*url)->find("&response-content-type=image%2Fpng&"), std::string::npos) << **url;
  auto got = fetch(**url);
  EXPECT_EQ(got.status, 200);
  EXPECT_TRUE(got.body == data) << got.body.size() << " bytes";
  EXPECT_EQ(got.content_type, "image/png");
  EXPECT_EQ(got.content_disposition, "attachment; filename=\"a b.png\"");

  auto missing = store->presign_get("m/none", {});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(fetch(**missing).status, 404);
  for (std::int64_t expires : {0, -5, 604801}) {
    auto refused = store->presign_get("m/photo", {.expires_in_s = expires});
    ASSERT_FALSE(refused.ok()) << expires;
    EXPECT_EQ(refused.err().code, errc::bad_request);
  }
}

TEST(s3rver, aborted_multipart_upload_leaves_no_object) {
  s3rver_factory factory;
  auto store = factory.make();
  {
    auto w = store->create("m/abandoned-large");
    ASSERT_TRUE(w.ok());
    // Two full parts uploaded, the third buffered.
    ASSERT_TRUE((*w)->append(testing::pattern_bytes(2 * factory.part_size() + 10)).ok());
    auto during = store->size_of("m/abandoned-large");
    ASSERT_TRUE(during.ok());
    EXPECT_FALSE(during->has_value());
  }
  auto after = store->size_of("m/abandoned-large");
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value());
  auto r = store->open("m/abandoned-large", 0, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::not_found);
}

TEST(s3rver, a_part_size_object_is_one_put_and_one_byte_more_is_multipart) {
  s3rver_factory factory;
  auto store = factory.make();
  for (std::size_t size : {factory.part_size(), factory.part_size() + 1}) {
    auto data = testing::pattern_bytes(size, static_cast<unsigned>(size));
    testing::put(*store, "m/edge", data, 1 * k_mib);
    auto got = store->size_of("m/edge");
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ(**got, size);
    EXPECT_TRUE(testing::get(*store, "m/edge", 0, size, 1 * k_mib) == data) << size;
  }
}

TEST(s3rver, virtual_hosted_addressing_reaches_the_same_bucket) {
  auto bucket = fresh_bucket_name();
  auto path_style = s3rver_config(bucket);
  create_bucket(path_style);
  // s3rver runs with serviceEndpoint "localhost": BUCKET.s3.localhost is the bucket (curl
  // resolves every *.localhost name to the loopback address itself).
  std::string endpoint = s3rver_environment::endpoint();
  std::string port = endpoint.substr(endpoint.rfind(':') + 1);
  auto virtual_hosted =
      parse_s3_url("s3://" + bucket + "?endpoint=http://s3.localhost:" + port + "&path_style=false",
                   "S3RVER", "S3RVER");
  ASSERT_TRUE(virtual_hosted.ok()) << virtual_hosted.err().message;
  s3_blob_store by_host(*virtual_hosted), by_path(path_style);
  EXPECT_TRUE(by_host.health().ok());
  testing::put(by_host, "m/vhost", "via the host name");
  EXPECT_EQ(testing::get(by_path, "m/vhost", 0, 17), "via the host name");
  EXPECT_EQ(testing::get(by_host, "m/vhost", 4, 3), "the");
}

TEST(s3rver, prefix_keeps_keys_apart) {
  auto bucket = fresh_bucket_name();
  auto plain = s3rver_config(bucket);
  create_bucket(plain);
  s3_blob_store prefixed(s3rver_config(bucket, "&prefix=tenant-a/")), whole(plain);
  testing::put(prefixed, "m/x", "under the prefix");
  EXPECT_EQ(testing::get(whole, "tenant-a/m/x", 0, 16), "under the prefix");
  auto outside = whole.size_of("m/x");
  ASSERT_TRUE(outside.ok());
  EXPECT_FALSE(outside->has_value());
  EXPECT_TRUE(prefixed.remove("m/x").ok());
  auto gone = whole.size_of("tenant-a/m/x");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST(s3rver, missing_bucket_and_unknown_access_key_are_unavailable) {
  auto config = s3rver_config(fresh_bucket_name());  // never created
  s3_blob_store store(config);
  auto h = store.health();
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.err().code, errc::unavailable);
  EXPECT_NE(h.err().message.find("does not exist"), std::string::npos) << h.err().message;

  auto good = s3rver_config(fresh_bucket_name());
  create_bucket(good);
  auto wrong = good;
  wrong.creds.access_key_id = "NOT-A-KEY";
  s3_blob_store refused(wrong);
  auto w = refused.create("m/x");
  ASSERT_TRUE(w.ok());  // no I/O yet
  ASSERT_TRUE((*w)->append("x").ok());
  auto committed = (*w)->commit();
  ASSERT_FALSE(committed.ok());
  EXPECT_EQ(committed.err().code, errc::unavailable);
  EXPECT_NE(committed.err().message.find("HTTP 403 InvalidAccessKeyId"), std::string::npos)
      << committed.err().message;
  EXPECT_NE(committed.err().message.find("AWS_ACCESS_KEY_ID"), std::string::npos);
  // A failed writer stays failed.
  EXPECT_FALSE((*w)->append("y").ok());
  EXPECT_FALSE((*w)->commit().ok());
  auto size = refused.size_of("m/x");
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.err().code, errc::unavailable);
  EXPECT_NE(size.err().message.find("HTTP 403"), std::string::npos) << size.err().message;
}

// ---- no server at all ----

s3_config dead_config(int port) {
  auto c =
      parse_s3_url("s3://bucket?endpoint=http://127.0.0.1:" + std::to_string(port), "AK", "SK");
  EXPECT_TRUE(c.ok());
  return *c;
}

// A port nothing listens on: bound, never listened.
struct closed_port {
  closed_port() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ~closed_port() { close(fd); }
  int fd;
  int port;
};

TEST(dead_endpoint, every_call_is_unavailable_quickly) {
  closed_port closed;
  s3_blob_store store(dead_config(closed.port));
  auto started = std::chrono::steady_clock::now();
  auto h = store.health();
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.err().code, errc::unavailable);
  EXPECT_NE(h.err().message.find("127.0.0.1:" + std::to_string(closed.port)), std::string::npos)
      << h.err().message;
  auto size = store.size_of("m/x");
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.err().code, errc::unavailable);
  auto r = store.open("m/x", 0, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
  EXPECT_EQ(store.remove("m/x").err().code, errc::unavailable);
  auto w = store.create("m/x");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->commit().err().code, errc::unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

TEST(dead_endpoint, bad_keys_are_refused_before_any_request) {
  closed_port closed;
  s3_blob_store store(dead_config(closed.port));
  for (std::string key : {"", "A", "m//x", "/m", "m/../x"}) {
    EXPECT_EQ(store.create(key).err().code, errc::bad_request) << key;
    EXPECT_EQ(store.open(key, 0, 1).err().code, errc::bad_request) << key;
    EXPECT_EQ(store.size_of(key).err().code, errc::bad_request) << key;
    EXPECT_EQ(store.remove(key).err().code, errc::bad_request) << key;
    EXPECT_EQ(store.presign_get(key, {}).err().code, errc::bad_request) << key;
  }
}

// ---- a scripted fake S3 ----

struct recorded_request {
  std::string method;
  std::string target;   // path?query as sent
  std::string headers;  // raw header block, names lower-cased
  std::string body;
  std::string header(std::string_view name) const {
    std::string needle = "\n" + std::string(name) + ":";
    auto at = headers.find(needle);
    if (at == std::string::npos) return {};
    auto start = headers.find_first_not_of(' ', at + needle.size());
    return headers.substr(start, headers.find("\r\n", start) - start);
  }
};

struct canned_response {
  int status = 200;
  std::string body;
  std::string extra_headers;  // "ETag: \"x\"\r\n"
  bool hang = false;          // accept the request, never answer
};

// One thread, one connection at a time, keep-alive: enough for a single writer or reader.
class fake_s3 {
 public:
  using handler = std::function<canned_response(const recorded_request&)>;

  explicit fake_s3(handler h) : handler_(std::move(h)) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listener_, 16);
    socklen_t len = sizeof addr;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~fake_s3() {
    stopping_ = true;
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    thread_.join();
  }

  int port() const { return port_; }
  std::vector<recorded_request> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  // "METHOD target" of every request, in order.
  std::vector<std::string> lines() {
    std::vector<std::string> out;
    for (const auto& r : requests()) out.push_back(r.method + " " + r.target);
    return out;
  }

 private:
  void serve() {
    while (!stopping_) {
      int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      serve_connection(fd);
      close(fd);
    }
  }

  void serve_connection(int fd) {
    std::string in;
    char chunk[65536];
    for (;;) {
      auto head_end = in.find("\r\n\r\n");
      while (head_end == std::string::npos) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return;
        in.append(chunk, static_cast<std::size_t>(n));
        head_end = in.find("\r\n\r\n");
      }
      recorded_request req;
      std::string head = in.substr(0, head_end + 2);
      auto first_space = head.find(' ');
      req.method = head.substr(0, first_space);
      req.target = head.substr(first_space + 1, head.find(' ', first_space + 1) - first_space - 1);
      req.headers = "\n" + head.substr(head.find("\r\n") + 2);
      bool line_start = true;
      for (char& c : req.headers) {
        if (c == '\n')
          line_start = true;
        else if (c == ':')
          line_start = false;
        else if (line_start)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      std::size_t length = 0;
      if (auto cl = req.header("content-length"); !cl.empty()) length = std::stoul(cl);
      std::size_t body_start = head_end + 4;
      while (in.size() < body_start + length) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return;
        in.append(chunk, static_cast<std::size_t>(n));
      }
      req.body = in.substr(body_start, length);
      in.erase(0, body_start + length);
      canned_response answer = handler_(req);
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(req);
      }
      if (answer.hang) {
        while (!stopping_ && recv(fd, chunk, sizeof chunk, 0) > 0) {
        }
        return;
      }
      std::string out = "HTTP/1.1 " + std::to_string(answer.status) + " X\r\nContent-Length: " +
                        std::to_string(req.method == "HEAD" ? 0 : answer.body.size()) + "\r\n" +
                        answer.extra_headers + "\r\n";
      if (req.method != "HEAD") out += answer.body;
      if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) return;
    }
  }

  handler handler_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<recorded_request> requests_;
};

s3_config fake_config(const fake_s3& server, std::size_t part_size) {
  auto c = parse_s3_url("s3://bucket?endpoint=http://127.0.0.1:" + std::to_string(server.port()),
                        "AK", "SK");
  EXPECT_TRUE(c.ok());
  c->part_size = part_size;
  return *c;
}

// Answers a multipart upload the way S3 does; `complete` is the answer to the final POST.
canned_response multipart_s3(const recorded_request& r, canned_response complete = {}) {
  if (r.method == "POST" && r.target.ends_with("?uploads="))
    return {200,
            "<InitiateMultipartUploadResult><UploadId>up/1+x</UploadId>"
            "</InitiateMultipartUploadResult>"};
  if (r.method == "PUT" && r.target.find("partNumber=") != std::string::npos)
    return {200, "",
            "ETag: \"etag-" + r.target.substr(r.target.find("partNumber=") + 11, 1) + "\"\r\n"};
  if (r.method == "POST") return complete;
  if (r.method == "DELETE") return {204};
  return {200};
}

TEST(fake_s3, multipart_upload_sends_the_documented_requests) {
  fake_s3 server([](const recorded_request& r) {
    return multipart_s3(r, {200, "<CompleteMultipartUploadResult/>"});
  });
  s3_blob_store store(fake_config(server, 10));
  auto w = store.create("m/x");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->append("0123456789abcdefghij").ok());  // one part out, 10 bytes buffered
  ASSERT_TRUE((*w)->append("KLMNO").ok());                 // the second part out
  ASSERT_TRUE((*w)->commit().ok());
  w->reset();
  std::vector<std::string> expected{
      "POST /bucket/m/x?uploads=",
      "PUT /bucket/m/x?partNumber=1&uploadId=up%2F1%2Bx",
      "PUT /bucket/m/x?partNumber=2&uploadId=up%2F1%2Bx",
      "PUT /bucket/m/x?partNumber=3&uploadId=up%2F1%2Bx",
      "POST /bucket/m/x?uploadId=up%2F1%2Bx",
  };
  EXPECT_EQ(server.lines(), expected);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 5u);
  EXPECT_EQ(requests[1].body, "0123456789");
  EXPECT_EQ(requests[2].body, "abcdefghij");
  EXPECT_EQ(requests[3].body, "KLMNO");
  EXPECT_EQ(requests[4].body,
            "<CompleteMultipartUpload>"
            "<Part><PartNumber>1</PartNumber><ETag>&quot;etag-1&quot;</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>&quot;etag-2&quot;</ETag></Part>"
            "<Part><PartNumber>3</PartNumber><ETag>&quot;etag-3&quot;</ETag></Part>"
            "</CompleteMultipartUpload>");
  for (const auto& r : requests) {
    // The real hash of every body, signed; the signed Host is the one sent.
    EXPECT_EQ(r.header("x-amz-content-sha256"), util::to_hex(util::sha256(r.body))) << r.target;
    EXPECT_EQ(r.header("host"), "127.0.0.1:" + std::to_string(server.port()));
    EXPECT_TRUE(r.header("authorization").starts_with("AWS4-HMAC-SHA256 Credential=AK/"));
    EXPECT_EQ(r.header("expect"), "") << "no 100-continue";
  }
}

TEST(fake_s3, small_object_is_one_put) {
  fake_s3 server([](const recorded_request&) { return canned_response{200}; });
  s3_blob_store store(fake_config(server, 10));
  testing::put(store, "m/x", "0123456789", 3);  // exactly one part's worth
  testing::put(store, "m/empty", "");
  EXPECT_EQ(server.lines(), (std::vector<std::string>{"PUT /bucket/m/x", "PUT /bucket/m/empty"}));
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].body, "0123456789");
  EXPECT_EQ(requests[1].header("content-length"), "0");
}

TEST(fake_s3, writer_destroyed_before_commit_aborts_the_upload) {
  fake_s3 server([](const recorded_request& r) { return multipart_s3(r); });
  s3_blob_store store(fake_config(server, 10));
  {
    auto w = store.create("m/x");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->append(std::string(25, 'z')).ok());
  }
  EXPECT_EQ(server.lines(), (std::vector<std::string>{
                                "POST /bucket/m/x?uploads=",
                                "PUT /bucket/m/x?partNumber=1&uploadId=up%2F1%2Bx",
                                "PUT /bucket/m/x?partNumber=2&uploadId=up%2F1%2Bx",
                                "DELETE /bucket/m/x?uploadId=up%2F1%2Bx",
                            }));
}

TEST(fake_s3, an_error_inside_a_200_completion_fails_the_commit) {
  fake_s3 server([](const recorded_request& r) {
    return multipart_s3(r, {200,
                            "<?xml version=\"1.0\"?>\n\n<Error><Code>InternalError</Code>"
                            "<Message>We encountered an internal error.</Message></Error>"});
  });
  s3_blob_store store(fake_config(server, 10));
  {
    auto w = store.create("m/x");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->append(std::string(15, 'z')).ok());
    auto committed = (*w)->commit();
    ASSERT_FALSE(committed.ok());
    EXPECT_EQ(committed.err().code, errc::unavailable);
    EXPECT_NE(committed.err().message.find("HTTP 200 InternalError: We encountered"),
              std::string::npos)
        << committed.err().message;
  }
  // The failed upload is aborted.
  auto lines = server.lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "DELETE /bucket/m/x?uploadId=up%2F1%2Bx");
}

TEST(fake_s3, server_errors_carry_status_and_code) {
  fake_s3 server([](const recorded_request&) {
    return canned_response{503,
                           "<Error><Code>SlowDown</Code><Message>Please reduce your request "
                           "rate.</Message></Error>"};
  });
  s3_blob_store store(fake_config(server, 10));
  auto r = store.open("m/x", 0, 5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
  EXPECT_NE(r.err().message.find("HTTP 503 SlowDown: Please reduce your request rate."),
            std::string::npos)
      << r.err().message;
  EXPECT_EQ(store.health().err().code, errc::unavailable);
  EXPECT_EQ(store.size_of("m/x").err().code, errc::unavailable);
}

TEST(fake_s3, reads_in_ranged_pieces_of_at_most_the_piece_size) {
  const std::string object = testing::pattern_bytes(1000, 5);
  fake_s3 server([&](const recorded_request& r) {
    auto range = r.header("range");  // bytes=a-b
    auto dash = range.find('-');
    std::size_t first = std::stoul(range.substr(6, dash - 6));
    std::size_t last = std::min<std::size_t>(std::stoul(range.substr(dash + 1)), object.size() - 1);
    return canned_response{206, object.substr(first, last - first + 1)};
  });
  auto config = fake_config(server, 10);
  config.read_piece_size = 300;
  s3_blob_store store(config);
  EXPECT_TRUE(testing::get(store, "m/x", 100, 700, 64) == object.substr(100, 700));
  EXPECT_EQ(server.lines().size(), 3u);  // 300 + 300 + 100
  std::vector<std::string> ranges;
  for (const auto& r : server.requests()) ranges.push_back(r.header("range"));
  EXPECT_EQ(ranges, (std::vector<std::string>{"bytes=100-399", "bytes=400-699", "bytes=700-799"}));
  // A range past the object's end stops at the end.
  EXPECT_TRUE(testing::get(store, "m/x", 900, 300) == object.substr(900));
}

TEST(fake_s3, a_server_that_stops_answering_is_abandoned) {
  fake_s3 server([](const recorded_request&) { return canned_response{.hang = true}; });
  auto config = fake_config(server, 10);
  config.stall_timeout = 1s;
  s3_blob_store store(config);
  auto started = std::chrono::steady_clock::now();
  auto h = store.health();
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.err().code, errc::unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

}  // namespace
}  // namespace parley::blob::s3
