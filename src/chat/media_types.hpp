// What an upload may be (PROTOCOL §2 POST /v1/media): the declared type must be a plain MIME
// type that is not active content, the bytes must begin with the signature of that type when
// it has one, and no upload may look like HTML, SVG/XML or script to a browser, whatever it is
// declared as. These checks run before anything is stored; the download side adds nosniff, a
// sandboxing CSP and `Content-Disposition: attachment` for everything that is not image, audio
// or video, so a refused case slipping through would still not run in Parley's origin.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "chat/error.hpp"

namespace parley::chat {

// The bytes inspect_upload needs to see (the start of the body, or all of a shorter one).
inline constexpr std::size_t kMediaSniffBytes = 1024;

// `type/subtype` in lowercase, without parameters and surrounding spaces; bad_request when the
// Content-Type is not a well-formed MIME type, unsupported_type when it is active content
// (HTML, XHTML, SVG, XML, JavaScript).
result<std::string> normalize_upload_type(std::string_view content_type);

// unsupported_type when `head` (the first kMediaSniffBytes of the body, or all of it) does not
// start with the signature of `mime` (a type from normalize_upload_type), or sniffs as markup
// or script.
status inspect_upload(std::string_view mime, std::string_view head);

// True for types a browser shows inline without running anything: image/*, audio/*, video/*
// (minus the refused ones). Everything else is served as an attachment.
bool shown_inline(std::string_view mime);

}  // namespace parley::chat
