#include "proto/request.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace parley::proto {

namespace json = boost::json;
using chat::errc;
using chat::make_error;

namespace {

// Deep enough for every valid request; deeper input is refused by the parser itself, so
// 100 000 nested arrays cost no stack.
constexpr std::size_t kMaxDepth = 16;

struct field_error {
  chat::error err;
};

[[noreturn]] void fail(errc code, std::string message) {
  throw field_error{make_error(code, std::move(message))};
}

// Reads the arguments of one request; every accessor fails with the protocol's error code.
class args_reader {
 public:
  args_reader(const json::object& obj, const limits& lim) : obj_(obj), lim_(lim) {}

  const json::value* find(std::string_view key) const {
    auto* v = obj_.if_contains(key);
    return (v && !v->is_null()) ? v : nullptr;
  }

  std::string string(std::string_view key, std::size_t max_bytes, bool too_large_code = false,
                     std::size_t min_bytes = 1) const {
    auto* v = find(key);
    if (!v) fail(errc::bad_request, std::string(key) + " is required");
    return string_of(*v, key, max_bytes, too_large_code, min_bytes);
  }
  std::optional<std::string> optional_string(std::string_view key, std::size_t max_bytes,
                                             bool too_large_code = false) const {
    auto* v = find(key);
    if (!v) return std::nullopt;
    return string_of(*v, key, max_bytes, too_large_code, 0);
  }
  std::string id(std::string_view key) const {
    auto s = string(key, lim_.id_max_bytes);
    check_no_nul(s, key);
    return s;
  }

  chat::seq_t seq(std::string_view key) const {
    auto* v = find(key);
    if (!v) fail(errc::bad_request, std::string(key) + " is required");
    return seq_of(*v, key);
  }
  std::optional<chat::seq_t> optional_seq(std::string_view key) const {
    auto* v = find(key);
    if (!v) return std::nullopt;
    return seq_of(*v, key);
  }

  std::vector<std::string> id_list(std::string_view key, std::size_t max_items) const {
    auto* v = find(key);
    if (!v) fail(errc::bad_request, std::string(key) + " is required");
    if (!v->is_array()) fail(errc::bad_request, std::string(key) + " must be an array");
    const auto& arr = v->get_array();
    if (arr.size() > max_items)
      fail(errc::too_large, std::string(key) + " has more than " + std::to_string(max_items) +
                                " entries");
    std::vector<std::string> out;
    out.reserve(arr.size());
    for (const auto& item : arr) {
      auto s = string_of(item, key, lim_.id_max_bytes, false, 1);
      check_no_nul(s, key);
      out.push_back(std::move(s));
    }
    return out;
  }

  bool boolean(std::string_view key) const {
    auto* v = find(key);
    if (!v) fail(errc::bad_request, std::string(key) + " is required");
    if (!v->is_bool()) fail(errc::bad_request, std::string(key) + " must be true or false");
    return v->get_bool();
  }

  // A title: 1 to max_chars code points, no control characters.
  std::string title(std::string_view key, std::size_t max_chars) const {
    auto s = string(key, max_chars * 4);
    std::size_t chars = 0;
    for (unsigned char c : s) {
      if ((c & 0xc0) != 0x80) ++chars;
      if (c < 0x20) fail(errc::bad_request, std::string(key) + " must not contain control characters");
    }
    if (chars < 1 || chars > max_chars)
      fail(errc::bad_request, std::string(key) + " must be 1 to " + std::to_string(max_chars) +
                                  " characters");
    return s;
  }

  std::vector<std::string> optional_id_list(std::string_view key, std::size_t max_items) const {
    if (!find(key)) return {};
    return id_list(key, max_items);
  }

  static chat::seq_t seq_of(const json::value& v, std::string_view key) {
    // Integers only: 1.5, 1e400 and "3" are refused; -0 parses as the integer 0.
    if (v.is_uint64()) return v.get_uint64();
    if (v.is_int64() && v.get_int64() >= 0) return static_cast<chat::seq_t>(v.get_int64());
    fail(errc::bad_request, std::string(key) + " must be an integer >= 0");
  }

 private:
  static std::string string_of(const json::value& v, std::string_view key, std::size_t max_bytes,
                               bool too_large_code, std::size_t min_bytes) {
    if (!v.is_string()) fail(errc::bad_request, std::string(key) + " must be a string");
    const auto& s = v.get_string();
    if (s.size() > max_bytes)
      fail(too_large_code ? errc::too_large : errc::bad_request,
           std::string(key) + " is longer than " + std::to_string(max_bytes) + " bytes");
    if (s.size() < min_bytes) fail(errc::bad_request, std::string(key) + " must not be empty");
    return std::string(s.data(), s.size());
  }
  static void check_no_nul(std::string_view s, std::string_view key) {
    if (s.find('\0') != std::string_view::npos)
      fail(errc::bad_request, std::string(key) + " must not contain NUL");
  }

  const json::object& obj_;
  const limits& lim_;
};

chat::send_request decode_send(const args_reader& r, const limits& lim) {
  chat::send_request req;
  req.chat = r.id("chat");
  req.cid = r.id("cid");
  req.text = r.optional_string("text", lim.text_max_bytes, /*too_large_code=*/true);
  if (auto* m = r.find("media")) {
    if (!m->is_object()) fail(errc::bad_request, "media must be an object");
    args_reader media(m->get_object(), lim);
    chat::media_ref ref;
    ref.media_id = media.id("media_id");
    ref.mime = media.string("mime", lim.mime_max_bytes);
    ref.size = media.seq("size");
    ref.name = media.optional_string("name", lim.media_name_max_bytes);
    req.media = std::move(ref);
  }
  if (!req.media && (!req.text || req.text->empty()))
    fail(errc::bad_request, "send needs a non-empty text or a media");
  req.reply_to = r.optional_seq("reply_to");
  return req;
}

chat::history_request decode_history(const args_reader& r) {
  chat::history_request req;
  req.chat = r.id("chat");
  req.before = r.optional_seq("before");
  req.after = r.optional_seq("after");
  if (auto* v = r.find("limit")) {
    auto limit = args_reader::seq_of(*v, "limit");
    if (limit < 1 || limit > 100) fail(errc::bad_request, "limit must be between 1 and 100");
    req.limit = static_cast<unsigned>(limit);
  }
  return req;
}

users_get_args decode_users_get(const args_reader& r, const limits& lim) {
  bool names = r.find("usernames") != nullptr;
  bool ids = r.find("ids") != nullptr;
  if (names == ids) fail(errc::bad_request, "give exactly one of usernames and ids");
  users_get_args a;
  a.by_id = ids;
  a.values = r.id_list(ids ? "ids" : "usernames", lim.users_get_max);
  return a;
}

chat::group_update_request decode_group_update(const args_reader& r, const limits& lim) {
  chat::group_update_request req;
  req.chat = r.id("chat");
  if (r.find("title")) req.title = r.title("title", lim.title_max_chars);
  req.admins_add = r.optional_id_list("admins_add", lim.group_members_max);
  req.admins_remove = r.optional_id_list("admins_remove", lim.group_members_max);
  return req;
}

request_args decode_args(std::string_view op, const args_reader& r, const limits& lim) {
  if (op == "send") return decode_send(r, lim);
  if (op == "ack") return ack_args{{r.id("chat"), r.seq("seq")}};
  if (op == "read") return read_args{{r.id("chat"), r.seq("seq")}};
  if (op == "history") return decode_history(r);
  if (op == "ping") return ping_args{};
  if (op == "chats") return chats_args{};
  if (op == "chat.open") return chat_open_args{r.id("peer")};
  if (op == "users.get") return decode_users_get(r, lim);
  if (op == "auth") return auth_args{r.string("token", lim.token_max_bytes)};
  if (op == "typing") return typing_args{r.id("chat"), r.boolean("on")};
  if (op == "receipts") return receipts_args{{r.id("chat"), r.seq("seq")}};
  if (op == "presence.sub") return presence_sub_args{r.id_list("users", lim.presence_sub_max)};
  if (op == "media.url") return media_url_args{r.id("media_id")};
  if (op == "group.create")
    return chat::group_create_request{r.title("title", lim.title_max_chars),
                                      r.id_list("members", lim.group_members_max)};
  if (op == "group.add")
    return group_add_args{{r.id("chat"), r.id_list("users", lim.group_members_max)}};
  if (op == "group.remove")
    return group_remove_args{{r.id("chat"), r.id_list("users", lim.group_members_max)}};
  if (op == "group.leave") return group_leave_args{r.id("chat")};
  if (op == "group.update") return decode_group_update(r, lim);
  fail(errc::bad_request, "unknown op");
}

// The end of the JSON value that starts at `at` in an already validated document.
std::size_t skip_value(std::string_view text, std::size_t at) {
  if (at >= text.size()) return at;
  char c = text[at];
  if (c == '"') {
    for (std::size_t i = at + 1; i < text.size(); ++i) {
      if (text[i] == '\\') {
        ++i;
      } else if (text[i] == '"') {
        return i + 1;
      }
    }
    return text.size();
  }
  if (c == '{' || c == '[') {
    int depth = 0;
    for (std::size_t i = at; i < text.size(); ++i) {
      char d = text[i];
      if (d == '"') {
        i = skip_value(text, i) - 1;
      } else if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return text.size();
  }
  // A number or a literal: up to the next delimiter.
  std::size_t i = at;
  while (i < text.size() && text[i] != ',' && text[i] != '}' && text[i] != ']' &&
         text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
    ++i;
  return i;
}

// The text of the top-level member "id" exactly as the client wrote it (the last one, as the
// parser keeps the last of duplicate keys), or empty when it cannot be found verbatim (a key
// written with escapes). Echoing the client's own text keeps `re` equal to the id whatever
// its type: a re-serialized number may differ (1e400 has no double; decimals may round).
std::string_view raw_id(std::string_view frame) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  std::size_t i = 0;
  while (i < frame.size() && is_space(frame[i])) ++i;
  if (i >= frame.size() || frame[i] != '{') return {};
  ++i;
  std::string_view found;
  while (i < frame.size()) {
    while (i < frame.size() && (is_space(frame[i]) || frame[i] == ',')) ++i;
    if (i >= frame.size() || frame[i] != '"') break;
    auto key_end = skip_value(frame, i);
    auto key = frame.substr(i, key_end - i);
    i = key_end;
    while (i < frame.size() && (is_space(frame[i]) || frame[i] == ':')) ++i;
    auto value_end = skip_value(frame, i);
    if (key == "\"id\"") found = frame.substr(i, value_end - i);
    i = value_end;
  }
  return found;
}

}  // namespace

decode_result decode_request(std::string_view frame, const limits& lim) {
  unsigned char buffer[4096];
  json::monotonic_resource arena(buffer, sizeof buffer);
  json::parse_options options;
  options.max_depth = kMaxDepth;
  boost::system::error_code ec;
  json::value doc = json::parse(frame, ec, &arena, options);
  if (ec) return decode_error{{}, make_error(errc::bad_request, "malformed JSON: " + ec.message())};
  if (!doc.is_object())
    return decode_error{{}, make_error(errc::bad_request, "a request must be a JSON object")};
  const auto& obj = doc.get_object();

  std::string id_json;
  if (auto* id = obj.if_contains("id"); id && !id->is_null()) {
    auto raw = raw_id(frame);
    id_json = raw.empty() ? json::serialize(*id) : std::string(raw);
  }

  try {
    auto* op = obj.if_contains("op");
    if (!op || !op->is_string()) fail(errc::bad_request, "op must be a string");
    args_reader reader(obj, lim);
    return request{id_json, decode_args(op->get_string(), reader, lim)};
  } catch (const field_error& e) {
    return decode_error{std::move(id_json), e.err};
  }
}

}  // namespace parley::proto
