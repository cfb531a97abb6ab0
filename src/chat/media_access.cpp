#include "chat/media_access.hpp"

namespace parley::chat {

bool valid_media_id(std::string_view id) {
  if (id.size() != 27 || id.front() != 'm') return false;
  for (char c : id.substr(1)) {
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) return false;
  }
  return true;
}

result<media_record> readable_media(store& db, std::string_view user_id,
                                    std::string_view media_id) {
  if (!valid_media_id(media_id)) return make_error(errc::not_found, "unknown media_id");
  auto media = db.find_media(media_id);
  if (!media) return media.err();
  if (!*media) return make_error(errc::not_found, "unknown media_id");
  if ((*media)->owner == user_id) return std::move(**media);
  auto forbidden = [] { return make_error(errc::forbidden, "this media was not shared with you"); };
  auto chats = db.media_chats(media_id, kMediaLinksChecked);
  if (!chats) return chats.err();
  for (const auto& chat_id : *chats) {
    auto standing = db.find_membership(user_id, chat_id);
    if (!standing) return standing.err();
    if (*standing && (*standing)->left_seq == 0) return std::move(**media);
  }
  if (chats->size() < kMediaLinksChecked) return forbidden();
  // A media forwarded into more chats than that: look from the user's side instead, so that
  // no number of other chats can hide the user's own.
  auto mine = db.memberships_of(user_id);
  if (!mine) return mine.err();
  for (const auto& m : *mine) {
    if (m.left_seq != 0) continue;
    auto linked = db.has_media_link(media_id, m.chat_id);
    if (!linked) return linked.err();
    if (*linked) return std::move(**media);
  }
  return forbidden();
}

status check_media_for_send(store& db, std::string_view user_id, const media_ref& ref) {
  auto media = readable_media(db, user_id, ref.media_id);
  if (!media) return media.err();
  if (media->mime != ref.mime || media->size != ref.size)
    return make_error(errc::bad_request, "media mime or size differs from the upload");
  return ok_status();
}

}  // namespace parley::chat
