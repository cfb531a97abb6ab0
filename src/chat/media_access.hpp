// Who may use an uploaded media (PROTOCOL §2, §3 `send`): its uploader, and the current members
// of any chat where a message carries it. Shared by downloads, media.url and send.
//
// Thread safety: pure functions over the store (any thread). They read the store: never call
// them where a store read is not allowed.
#pragma once

#include <string_view>

#include "chat/requests.hpp"
#include "chat/store.hpp"

namespace parley::chat {

// How many linked chats are examined through the media's links; past that many, the user's own
// chats are examined instead (a media forwarded into thousands of chats).
inline constexpr std::size_t kMediaLinksChecked = 1000;

// A media id as the server makes them: 'm' and 26 characters of lowercase base32.
bool valid_media_id(std::string_view id);

// The media, when `user_id` may read it; not_found for an unknown id, forbidden otherwise.
result<media_record> readable_media(store& db, std::string_view user_id, std::string_view media_id);

// For `send`: not_found (unknown id), forbidden (not the uploader's nor seen in one of the
// sender's chats), bad_request (a mime or size that differs from the stored one).
status check_media_for_send(store& db, std::string_view user_id, const media_ref& ref);

}  // namespace parley::chat
