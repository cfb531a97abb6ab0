#include "chat/media_types.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace parley::chat {

namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// RFC 9110 §5.6.2 token characters.
bool token_char(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Types whose content a browser runs or renders as a document.
bool active_type(std::string_view mime) {
  static constexpr std::array<std::string_view, 14> kActive = {
      "text/html",           "application/xhtml+xml", "image/svg+xml",
      "text/javascript",     "application/javascript", "application/x-javascript",
      "text/ecmascript",     "application/ecmascript", "text/jscript",
      "application/xml",     "text/xml",              "text/xsl",
      "application/xslt+xml", "text/vbscript"};
  if (std::find(kActive.begin(), kActive.end(), mime) != kActive.end()) return true;
  // Any other XML dialect (+xml) can carry script or an XSLT stylesheet.
  return mime.ends_with("+xml");
}

// The signature of a type, checked at the start of the body. A type may have several; `?` in
// a pattern matches any byte (the size fields of RIFF and ISO BMFF boxes).
struct signature {
  std::string_view mime;
  std::string_view pattern;
  std::size_t offset = 0;
};

using namespace std::string_view_literals;
constexpr signature kSignatures[] = {
    {"image/png", "\x89PNG\r\n\x1a\n"sv},
    {"image/jpeg", "\xff\xd8\xff"sv},
    {"image/gif", "GIF87a"sv},
    {"image/gif", "GIF89a"sv},
    {"image/webp", "RIFF????WEBP"sv},
    {"image/bmp", "BM"sv},
    {"image/tiff", "II*\0"sv},
    {"image/tiff", "MM\0*"sv},
    {"image/x-icon", "\0\0\1\0"sv},
    {"image/vnd.microsoft.icon", "\0\0\1\0"sv},
    {"image/avif", "ftyp"sv, 4},
    {"image/heic", "ftyp"sv, 4},
    {"image/heif", "ftyp"sv, 4},
    {"application/pdf", "%PDF-"sv},
    {"application/zip", "PK\3\4"sv},
    {"application/zip", "PK\5\6"sv},  // an empty archive
    {"application/gzip", "\x1f\x8b"sv},
    {"application/x-gzip", "\x1f\x8b"sv},
    {"application/zstd", "\x28\xb5\x2f\xfd"sv},
    {"application/x-7z-compressed", "7z\xbc\xaf\x27\x1c"sv},
    {"video/mp4", "ftyp"sv, 4},
    {"audio/mp4", "ftyp"sv, 4},
    {"audio/x-m4a", "ftyp"sv, 4},
    {"video/quicktime", "ftyp"sv, 4},
    {"video/quicktime", "moov"sv, 4},
    {"video/3gpp", "ftyp"sv, 4},
    {"video/webm", "\x1a\x45\xdf\xa3"sv},
    {"audio/webm", "\x1a\x45\xdf\xa3"sv},
    {"video/x-matroska", "\x1a\x45\xdf\xa3"sv},
    {"audio/ogg", "OggS"sv},
    {"video/ogg", "OggS"sv},
    {"application/ogg", "OggS"sv},
    {"audio/opus", "OggS"sv},
    {"audio/flac", "fLaC"sv},
    {"audio/wav", "RIFF????WAVE"sv},
    {"audio/x-wav", "RIFF????WAVE"sv},
    {"audio/wave", "RIFF????WAVE"sv},
    {"audio/mpeg", "ID3"sv},
    {"audio/mpeg", "\xff\xfb"sv},
    {"audio/mpeg", "\xff\xf3"sv},
    {"audio/mpeg", "\xff\xf2"sv},
    {"audio/aac", "\xff\xf1"sv},
    {"audio/aac", "\xff\xf9"sv},
    {"video/mpeg", "\0\0\1\xba"sv},
    {"video/mpeg", "\0\0\1\xb3"sv},
};

bool matches(std::string_view data, const signature& sig) {
  if (data.size() < sig.offset + sig.pattern.size()) return false;
  for (std::size_t i = 0; i < sig.pattern.size(); ++i) {
    if (sig.pattern[i] != '?' && data[sig.offset + i] != sig.pattern[i]) return false;
  }
  return true;
}

// Markup that makes a browser sniff HTML or XML (the WHATWG MIME Sniffing patterns, which
// browsers apply after leading whitespace) plus a few tags that are dangerous anywhere near the
// start of a file served to a browser that ignores nosniff.
constexpr std::string_view kMarkupAtStart[] = {
    "<!doctype html", "<html", "<head", "<script", "<iframe", "<h1", "<div", "<font", "<table",
    "<a",             "<style", "<title", "<b",     "<body",  "<br", "<p",   "<!--", "<?xml",
    "<svg",           "<xml",   "<xsl",  "<object", "<embed", "<img", "<meta", "<link", "<base",
    "<form",          "<math",  "<frameset"};
constexpr std::string_view kMarkupAnywhere[] = {"<script", "<html", "<svg", "<iframe", "<body",
                                                "<object", "<embed", "<?xml-stylesheet",
                                                "javascript:"};

std::string lowered(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = lower(c);
  return out;
}

// A tag pattern counts when it is followed by a byte that ends a tag name (WHATWG: space or
// `>`), or by the end of the data we have; "<!--" and "<?xml" stand alone.
bool tag_at(std::string_view text, std::size_t at, std::string_view pattern) {
  if (text.compare(at, pattern.size(), pattern) != 0) return false;
  if (pattern == "<!--" || pattern.starts_with("<?")) return true;
  auto next = at + pattern.size();
  if (next >= text.size()) return true;
  char c = text[next];
  return c == ' ' || c == '>' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '/';
}

bool sniffs_as_markup(std::string_view head) {
  auto text = lowered(head);
  // Byte order marks and leading whitespace are skipped by the sniffer, so skip them too.
  std::string_view t(text);
  for (std::string_view bom : {"\xef\xbb\xbf"sv, "\xfe\xff"sv, "\xff\xfe"sv}) {
    if (t.starts_with(bom)) {
      t.remove_prefix(bom.size());
      break;
    }
  }
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t' || t.front() == '\n' ||
                        t.front() == '\r' || t.front() == '\f')) {
    t.remove_prefix(1);
  }
  for (auto p : kMarkupAtStart) {
    if (tag_at(t, 0, p)) return true;
  }
  // UTF-16 markup: "<" followed by NUL bytes hides the tag from the byte patterns above.
  if (t.size() >= 4 && ((t[0] == '<' && t[1] == '\0') || (t[0] == '\0' && t[1] == '<'))) {
    return true;
  }
  for (auto p : kMarkupAnywhere) {
    if (t.find(p) != std::string_view::npos) return true;
  }
  return false;
}

bool has_signature(std::string_view mime) {
  return std::any_of(std::begin(kSignatures), std::end(kSignatures),
                     [&](const signature& s) { return s.mime == mime; });
}

}  // namespace

result<std::string> normalize_upload_type(std::string_view content_type) {
  auto bad = [] {
    return make_error(errc::bad_request, "Content-Type must be a MIME type such as image/png");
  };
  auto type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  auto slash = type.find('/');
  if (type.empty() || type.size() > 100 || slash == std::string_view::npos || slash == 0 ||
      slash + 1 == type.size()) {
    return bad();
  }
  std::string out;
  for (std::size_t i = 0; i < type.size(); ++i) {
    if (i != slash && !token_char(type[i])) return bad();
    out.push_back(lower(type[i]));
  }
  if (active_type(out))
    return make_error(errc::unsupported_type, "active content is not accepted: " + out);
  return out;
}

status inspect_upload(std::string_view mime, std::string_view head) {
  if (has_signature(mime)) {
    bool ok = std::any_of(std::begin(kSignatures), std::end(kSignatures),
                          [&](const signature& s) { return s.mime == mime && matches(head, s); });
    if (!ok)
      return make_error(errc::unsupported_type,
                        "the bytes do not start with the signature of " + std::string(mime));
  }
  if (sniffs_as_markup(head))
    return make_error(errc::unsupported_type, "the bytes look like HTML, SVG, XML or script");
  return ok_status();
}

bool shown_inline(std::string_view mime) {
  if (active_type(mime)) return false;
  return mime.starts_with("image/") || mime.starts_with("audio/") || mime.starts_with("video/");
}

}  // namespace parley::chat
