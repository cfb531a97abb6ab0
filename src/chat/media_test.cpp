// The media domain: upload type policy, streamed uploads, access rules and signed URLs, against
// the in-memory store and a minimal in-memory blob store (the real blob stores have their own
// conformance suite in blob/).
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "chat/media_access.hpp"
#include "chat/media_library.hpp"
#include "chat/media_types.hpp"
#include "store/memory/memory_store.hpp"
#include "util/clock.hpp"
#include "util/crypto.hpp"

namespace parley::chat {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

const std::string kPng = "\x89PNG\r\n\x1a\n"s + std::string(2000, 'p');

// Objects in a map; a writer's bytes become visible at commit only.
class map_blob_store final : public blob_store {
 public:
  class writer final : public blob_writer {
   public:
    writer(map_blob_store& s, std::string key) : s_(s), key_(std::move(key)) {}
    status append(std::string_view b) override {
      data_.append(b);
      return ok_status();
    }
    status commit() override {
      std::lock_guard lock(s_.mutex_);
      s_.objects_[key_] = std::move(data_);
      return ok_status();
    }

   private:
    map_blob_store& s_;
    std::string key_;
    std::string data_;
  };
  class reader final : public blob_reader {
   public:
    explicit reader(std::string data) : data_(std::move(data)) {}
    result<std::size_t> read(char* out, std::size_t cap) override {
      auto n = std::min(cap, data_.size() - at_);
      std::copy_n(data_.data() + at_, n, out);
      at_ += n;
      return n;
    }

   private:
    std::string data_;
    std::size_t at_ = 0;
  };

  result<std::unique_ptr<blob_writer>> create(std::string_view key) override {
    ++creates;
    return std::unique_ptr<blob_writer>(std::make_unique<writer>(*this, std::string(key)));
  }
  result<std::unique_ptr<blob_reader>> open(std::string_view key, std::uint64_t offset,
                                            std::uint64_t length) override {
    std::lock_guard lock(mutex_);
    auto it = objects_.find(std::string(key));
    if (it == objects_.end()) return make_error(errc::not_found, "no object");
    return std::unique_ptr<blob_reader>(std::make_unique<reader>(it->second.substr(offset, length)));
  }
  result<std::optional<std::uint64_t>> size_of(std::string_view key) override {
    std::lock_guard lock(mutex_);
    auto it = objects_.find(std::string(key));
    if (it == objects_.end()) return std::optional<std::uint64_t>();
    return std::optional<std::uint64_t>(it->second.size());
  }
  status remove(std::string_view key) override {
    std::lock_guard lock(mutex_);
    objects_.erase(std::string(key));
    return ok_status();
  }
  result<std::optional<std::string>> presign_get(std::string_view key,
                                                 const presign_request& req) override {
    if (!presigns) return std::optional<std::string>();
    return std::optional<std::string>("https://blobs.example/" + std::string(key) + "?t=" +
                                      req.content_type + "&d=" + req.content_disposition);
  }
  status health() override { return ok_status(); }
  std::string describe() const override { return "map"; }

  std::size_t object_count() {
    std::lock_guard lock(mutex_);
    return objects_.size();
  }
  int creates = 0;
  bool presigns = false;

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> objects_;
};

struct media_fixture : ::testing::Test {
  media_fixture() { util::init_crypto(); }
  ::parley::store::memory_store db;
  map_blob_store blobs;
  media_library lib{db, blobs,
                    {.max_bytes = 10'000, .url_secret = std::string(64, 'k'), .max_uploads_per_user = 100}};

  media_record upload(std::string_view owner, const std::string& data,
                      std::string_view mime = "image/png") {
    auto up = lib.begin_upload(owner, mime, data.size());
    EXPECT_TRUE(up.ok());
    EXPECT_TRUE((*up)->append(data).ok());
    auto m = (*up)->finish();
    EXPECT_TRUE(m.ok()) << m.err().message;
    return *m;
  }
};

TEST(media_types, normalizes_declared_types) {
  EXPECT_EQ(*normalize_upload_type("image/png"), "image/png");
  EXPECT_EQ(*normalize_upload_type(" Image/PNG ; charset=x"), "image/png");
  EXPECT_EQ(*normalize_upload_type("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  for (auto bad : {"", "png", "/png", "image/", "ima ge/png", "image/p\"ng", "a/b/c"}) {
    auto r = normalize_upload_type(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.err().code, errc::bad_request) << bad;
  }
  for (auto active : {"text/html", "TEXT/HTML", "application/xhtml+xml", "image/svg+xml",
                      "text/javascript", "application/javascript", "application/xml",
                      "application/rss+xml"}) {
    auto r = normalize_upload_type(active);
    ASSERT_FALSE(r.ok()) << active;
    EXPECT_EQ(r.err().code, errc::unsupported_type) << active;
    EXPECT_EQ(to_code(r.err().code), "bad_request");  // PROTOCOL §2: 415 carries bad_request
  }
}

TEST(media_types, signatures_are_checked_for_known_types) {
  EXPECT_TRUE(inspect_upload("image/png", kPng).ok());
  EXPECT_TRUE(inspect_upload("image/jpeg", "\xff\xd8\xff\xe0rest").ok());
  EXPECT_TRUE(inspect_upload("image/webp", "RIFF\x10\0\0\0WEBPVP8 "sv).ok());
  EXPECT_TRUE(inspect_upload("video/mp4", "\0\0\0\x18" "ftypmp42"sv).ok());
  EXPECT_TRUE(inspect_upload("application/pdf", "%PDF-1.7\n").ok());
  EXPECT_FALSE(inspect_upload("image/png", "\xff\xd8\xff\xe0").ok());
  EXPECT_FALSE(inspect_upload("image/png", "").ok());
  EXPECT_FALSE(inspect_upload("image/webp", "RIFF\x10\0\0\0WAVE"sv).ok());
  EXPECT_FALSE(inspect_upload("application/pdf", "<html>").ok());
  // Types without a signature take any bytes that are not markup.
  EXPECT_TRUE(inspect_upload("text/plain", "just words < and > signs").ok());
  EXPECT_TRUE(inspect_upload("application/octet-stream", std::string(100, '\0')).ok());
  EXPECT_TRUE(inspect_upload("text/plain", "").ok());
}

TEST(media_types, markup_is_refused_whatever_the_type) {
  for (auto body : {"<!DOCTYPE html><p>x", "  \n\t<HTML>", "\xef\xbb\xbf<html>", "<svg xmlns=''>",
                    "<?xml version='1.0'?>", "<script>alert(1)</script>", "<a href=x>y</a>",
                    "<!-- comment -->", "text then <ScRiPt src=x>", "<\0h\0t\0m\0l\0>\0"}) {
    std::string b(body, std::char_traits<char>::length(body) + (body[1] == '\0' ? 11 : 0));
    auto r = inspect_upload("text/plain", b);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.err().code, errc::unsupported_type);
  }
  // A tag name must end where a tag name ends: "<abbr" is not "<a".
  EXPECT_TRUE(inspect_upload("text/plain", "<abbreviated notes>").ok());
}

TEST(media_types, only_images_audio_and_video_show_inline) {
  EXPECT_TRUE(shown_inline("image/png"));
  EXPECT_TRUE(shown_inline("video/mp4"));
  EXPECT_TRUE(shown_inline("audio/ogg"));
  EXPECT_FALSE(shown_inline("image/svg+xml"));
  EXPECT_FALSE(shown_inline("application/pdf"));
  EXPECT_FALSE(shown_inline("text/plain"));
}

TEST(media_access, ids_are_checked_before_any_lookup) {
  EXPECT_TRUE(valid_media_id(util::random_id('m')));
  for (auto bad : {"", "m", "../etc/passwd", "mabcdefghijklmnopqrstuvwxy1", "Mabcdefghijklmnopqrstuvwxyz",
                   "mabcdefghijklmnopqrstuvwxyz0", "mabcdefghijklmnopqrstuvwx/z"}) {
    EXPECT_FALSE(valid_media_id(bad)) << bad;
  }
}

TEST_F(media_fixture, upload_streams_hashes_and_records) {
  auto up = lib.begin_upload("u1", "image/png", kPng.size());
  ASSERT_TRUE(up.ok());
  for (char c : kPng) ASSERT_TRUE((*up)->append(std::string_view(&c, 1)).ok());  // byte by byte
  auto m = (*up)->finish();
  ASSERT_TRUE(m.ok()) << m.err().message;
  EXPECT_TRUE(valid_media_id(m->id));
  EXPECT_EQ(m->size, kPng.size());
  EXPECT_EQ(m->sha256, util::to_hex(util::sha256(kPng)));
  EXPECT_EQ(m->owner, "u1");
  EXPECT_EQ(m->blob_key, "m/" + m->id);
  auto stored = db.find_media(m->id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->sha256, m->sha256);
  EXPECT_EQ(*blobs.size_of(m->blob_key), std::optional<std::uint64_t>(kPng.size()));
}

TEST_F(media_fixture, refused_uploads_store_nothing) {
  // Declared too large: refused before any byte.
  auto big = lib.begin_upload("u1", "image/png", 10'001);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.err().code, errc::too_large);
  // Undeclared, too many bytes.
  auto up = lib.begin_upload("u1", "image/png", std::nullopt);
  ASSERT_TRUE(up.ok());
  ASSERT_TRUE((*up)->append(kPng).ok());
  auto over = (*up)->append(std::string(9'000, 'x'));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.err().code, errc::too_large);
  // More than declared.
  auto lying = lib.begin_upload("u1", "image/png", 10);
  ASSERT_TRUE(lying.ok());
  EXPECT_EQ((*lying)->append(kPng).err().code, errc::too_large);
  // Fewer than declared.
  auto short_body = lib.begin_upload("u1", "image/png", kPng.size() + 1);
  ASSERT_TRUE((*short_body)->append(kPng).ok());
  EXPECT_EQ((*short_body)->finish().err().code, errc::bad_request);
  // Wrong signature, found once the sniff window is full (nothing written before that).
  auto html = lib.begin_upload("u1", "image/png", std::nullopt);
  EXPECT_EQ((*html)->append(std::string(2000, 'h')).err().code, errc::unsupported_type);
  // ...or at finish for a short body.
  auto small = lib.begin_upload("u1", "text/plain", std::nullopt);
  ASSERT_TRUE((*small)->append("<html>").ok());
  EXPECT_EQ((*small)->finish().err().code, errc::unsupported_type);
  EXPECT_EQ(blobs.object_count(), 0u);
}

TEST_F(media_fixture, uploads_in_progress_are_capped_in_all_and_per_user) {
  media_library capped{db, blobs,
                       {.url_secret = std::string(64, 'k'), .max_uploads = 3, .max_uploads_per_user = 2}};
  auto a1 = capped.begin_upload("a", "text/plain", std::nullopt);
  auto a2 = capped.begin_upload("a", "text/plain", std::nullopt);
  ASSERT_TRUE(a1.ok() && a2.ok());
  auto a3 = capped.begin_upload("a", "text/plain", std::nullopt);
  ASSERT_FALSE(a3.ok());
  EXPECT_EQ(a3.err().code, errc::rate_limited);
  EXPECT_GT(a3.err().retry_ms, 0);
  auto b1 = capped.begin_upload("b", "text/plain", std::nullopt);
  ASSERT_TRUE(b1.ok());
  EXPECT_EQ(capped.begin_upload("c", "text/plain", std::nullopt).err().code, errc::rate_limited);
  (*a1).reset();  // a finished or abandoned upload gives its slot back
  EXPECT_TRUE(capped.begin_upload("c", "text/plain", std::nullopt).ok());
}

TEST_F(media_fixture, the_owner_and_current_members_of_linked_chats_may_read) {
  auto m = upload("owner", kPng);
  EXPECT_TRUE(readable_media(db, "owner", m.id).ok());
  EXPECT_EQ(readable_media(db, "reader", m.id).err().code, errc::forbidden);
  EXPECT_EQ(readable_media(db, "owner", util::random_id('m')).err().code, errc::not_found);

  write_batch b;
  membership_record reader{.user_id = "reader", .chat_id = "c1"};
  membership_record departed{.user_id = "departed", .chat_id = "c1", .left_seq = 4};
  b.memberships = {reader, departed};
  b.media_links.push_back({m.id, "c1"});
  ASSERT_TRUE(db.write(b).ok());
  EXPECT_TRUE(readable_media(db, "reader", m.id).ok());
  EXPECT_EQ(readable_media(db, "departed", m.id).err().code, errc::forbidden);

  media_ref ref{m.id, "image/png", kPng.size(), std::nullopt};
  EXPECT_TRUE(check_media_for_send(db, "reader", ref).ok());
  EXPECT_EQ(check_media_for_send(db, "reader", {m.id, "image/gif", kPng.size(), {}}).err().code,
            errc::bad_request);
  EXPECT_EQ(check_media_for_send(db, "reader", {m.id, "image/png", 1, {}}).err().code,
            errc::bad_request);
  EXPECT_EQ(check_media_for_send(db, "stranger", ref).err().code, errc::forbidden);
}

TEST_F(media_fixture, no_number_of_other_chats_hides_a_members_own) {
  auto m = upload("owner", kPng);
  write_batch b;
  // More linked chats than are examined from the media's side, all sorting before the reader's.
  for (std::size_t i = 0; i < kMediaLinksChecked + 5; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "a%06zu", i);
    b.media_links.push_back({m.id, name});
  }
  b.media_links.push_back({m.id, "zz-readers-chat"});
  b.memberships.push_back({.user_id = "reader", .chat_id = "zz-readers-chat"});
  ASSERT_TRUE(db.write(b).ok());
  EXPECT_TRUE(readable_media(db, "reader", m.id).ok());
  EXPECT_EQ(readable_media(db, "stranger", m.id).err().code, errc::forbidden);
}

TEST_F(media_fixture, signed_urls_open_only_their_media_until_they_expire) {
  auto m = upload("owner", kPng);
  auto other = upload("owner", kPng);
  auto url = lib.url_for("owner", m.id);
  ASSERT_TRUE(url.ok());
  EXPECT_LE(url->expires, util::now_ms() + 3'600'000);
  EXPECT_GT(url->expires, util::now_ms() + 3'500'000);
  auto query = url->url.substr(url->url.find('?') + 1);
  auto exp = query.substr(4, query.find('&') - 4);
  auto sig = query.substr(query.find("sig=") + 4);
  EXPECT_EQ(url->url, "/v1/media/" + m.id + "?exp=" + exp + "&sig=" + sig);
  auto granted = lib.signed_media(m.id, exp, sig);
  ASSERT_TRUE(granted.ok());
  EXPECT_EQ(granted->media.id, m.id);
  EXPECT_EQ(granted->expires_s, std::stoll(exp));
  EXPECT_EQ(lib.signed_media(other.id, exp, sig).err().code, errc::forbidden);
  EXPECT_EQ(lib.signed_media(m.id, std::to_string(std::stoll(exp) + 1), sig).err().code,
            errc::forbidden);
  auto tampered = sig;
  tampered[0] = tampered[0] == 'a' ? 'b' : 'a';
  EXPECT_EQ(lib.signed_media(m.id, exp, tampered).err().code, errc::forbidden);
  EXPECT_EQ(lib.signed_media(m.id, "", sig).err().code, errc::forbidden);
  EXPECT_EQ(lib.signed_media(m.id, "-5", sig).err().code, errc::forbidden);
  // Only someone who may read the media gets a URL.
  EXPECT_EQ(lib.url_for("stranger", m.id).err().code, errc::forbidden);
  // Another key signs differently.
  media_library other_key{db, blobs, {.url_secret = std::string(64, 'z')}};
  EXPECT_EQ(other_key.signed_media(m.id, exp, sig).err().code, errc::forbidden);
}

TEST_F(media_fixture, direct_urls_come_from_the_blob_store_when_it_has_them) {
  auto m = upload("owner", kPng);
  auto pdf = upload("owner", "%PDF-1.4\n", "application/pdf");
  blobs.presigns = true;
  media_library direct{db, blobs, {.url_secret = std::string(64, 'k'), .direct_urls = true}};
  auto url = direct.url_for("owner", m.id);
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->url, "https://blobs.example/m/" + m.id + "?t=image/png&d=");
  EXPECT_EQ(direct.url_for("owner", pdf.id)->url,
            "https://blobs.example/m/" + pdf.id + "?t=application/pdf&d=attachment");
  blobs.presigns = false;  // a store without its own URLs: ours
  EXPECT_TRUE(direct.url_for("owner", m.id)->url.starts_with("/v1/media/"));
}

}  // namespace
}  // namespace parley::chat
