// The media routes of PROTOCOL §2: POST /v1/media streams an upload into the blob store (never
// held whole in memory), GET/HEAD /v1/media/{id} streams it back with ranges, an ETag and the
// headers that keep a browser from running it (nosniff, a sandboxing CSP, attachment for all
// but images, audio and video).
//
// Thread safety: every method runs on the worker pool (they block on the store and blob store).
#pragma once

#include "chat/media_library.hpp"
#include "chat/service.hpp"
#include "net/server.hpp"

namespace parley::server {

class media_http {
 public:
  media_http(chat::service& service, chat::media_library& media)
      : service_(service), media_(media) {}

  // For net::server::set_upload_handler: takes POST /v1/media.
  net::upload_handler upload_handler();
  // GET or HEAD /v1/media/{id} (the caller routed on the path prefix).
  net::http_reply download(const net::http_request& req);

 private:
  net::upload_decision begin_upload(const net::http_request_head& head);

  chat::service& service_;
  chat::media_library& media_;
};

}  // namespace parley::server
