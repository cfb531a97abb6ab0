#include "blob/s3/s3_config.hpp"

#include <cstdlib>
#include <optional>

#include "chat/blob_store.hpp"

namespace parley::blob::s3 {

namespace {

using chat::errc;
using chat::make_error;

chat::error bad(std::string message) {
  return make_error(errc::bad_request, "s3 URL: " + std::move(message));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int high = hex_value(s[i + 1]), low = hex_value(s[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

// S3's bucket naming rules: 3 to 63 of [a-z0-9.-], starting and ending with a letter or digit,
// no "..". (Those also keep the bucket safe in a host name and in a path.)
bool valid_bucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(b.front()) || !alnum(b.back())) return false;
  for (std::size_t i = 0; i < b.size(); ++i) {
    char c = b[i];
    if (!alnum(c) && c != '.' && c != '-') return false;
    if (c == '.' && i > 0 && b[i - 1] == '.') return false;
  }
  return true;
}

// "us-east-1", "eu-central-2", and the names other services use ("auto", "garage").
bool valid_region(std::string_view r) {
  if (r.empty() || r.size() > 32 || r.front() == '-' || r.back() == '-') return false;
  for (char c : r)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

// host[:port], host a name, an IPv4 address or a bracketed IPv6 address.
bool valid_authority(std::string_view a) {
  if (a.empty()) return false;
  std::string_view host = a, port;
  if (a.front() == '[') {
    auto close = a.find(']');
    if (close == std::string_view::npos) return false;
    host = a.substr(1, close - 1);
    auto rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
    if (host.empty()) return false;
    for (char c : host)
      if (!(hex_value(c) >= 0 || c == ':' || c == '.')) return false;
  } else {
    auto colon = a.rfind(':');
    if (colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty()) return false;
    for (char c : host)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '-'))
        return false;
  }
  if (port.size() > 5) return false;
  for (char c : port)
    if (c < '0' || c > '9') return false;
  if (!port.empty()) {
    int n = std::atoi(std::string(port).c_str());
    if (n < 1 || n > 65535) return false;
  }
  return true;
}

}  // namespace

chat::result<s3_config> parse_s3_url(std::string_view url, std::string_view access_key_id,
                                     std::string_view secret_access_key,
                                     std::string_view session_token) {
  constexpr std::string_view scheme = "s3://";
  if (!url.starts_with(scheme)) return bad("must start with s3:// (s3://BUCKET?endpoint=...)");
  auto rest = url.substr(scheme.size());
  auto question = rest.find('?');
  std::string_view bucket = rest.substr(0, question);
  std::string_view query =
      question == std::string_view::npos ? std::string_view{} : rest.substr(question + 1);

  s3_config config;
  if (bucket.empty()) return bad("missing bucket (s3://BUCKET?...)");
  if (bucket.find('/') != std::string_view::npos)
    return bad("no path after the bucket; put a key prefix in &prefix=");
  if (!valid_bucket(bucket))
    return bad("bad bucket name \"" + std::string(bucket) +
               "\" (3 to 63 of a-z 0-9 . -, starting and ending with a letter or digit)");
  config.bucket = bucket;

  std::optional<std::string> endpoint, region, path_style, prefix;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto name = pair.substr(0, eq);
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!value) return bad("bad percent-encoding in parameter " + std::string(name));
    std::optional<std::string>* slot = nullptr;
    if (name == "endpoint")
      slot = &endpoint;
    else if (name == "region")
      slot = &region;
    else if (name == "path_style")
      slot = &path_style;
    else if (name == "prefix")
      slot = &prefix;
    else
      return bad("unknown parameter \"" + std::string(name) +
                 "\" (known: endpoint, region, path_style, prefix)");
    if (slot->has_value()) return bad("parameter " + std::string(name) + " given twice");
    *slot = std::move(*value);
  }

  if (endpoint) {
    std::string_view e = *endpoint;
    if (e.starts_with("http://")) {
      config.scheme = "http";
      e.remove_prefix(7);
    } else if (e.starts_with("https://")) {
      config.scheme = "https";
      e.remove_prefix(8);
    } else {
      return bad("endpoint must start with http:// or https:// (got \"" + *endpoint + "\")");
    }
    if (e.ends_with('/')) e.remove_suffix(1);
    if (e.find('/') != std::string_view::npos || e.find('?') != std::string_view::npos)
      return bad("endpoint must be scheme://host[:port], without a path (got \"" + *endpoint +
                 "\")");
    if (!valid_authority(e)) return bad("bad endpoint host \"" + *endpoint + "\"");
    // The Host header leaves a default port out (what curl sends, and what is signed).
    std::string_view default_port = config.scheme == "http" ? ":80" : ":443";
    if (e.ends_with(default_port) && e.back() != ']') e.remove_suffix(default_port.size());
    config.endpoint_host = e;
  }
  if (region) {
    if (!valid_region(*region))
      return bad("bad region \"" + *region + "\" (like us-east-1: a-z, 0-9 and -)");
    config.region = *region;
  }
  config.path_style = endpoint.has_value();
  if (path_style) {
    if (*path_style == "true")
      config.path_style = true;
    else if (*path_style == "false")
      config.path_style = false;
    else
      return bad("path_style must be true or false (got \"" + *path_style + "\")");
  }
  if (prefix && !prefix->empty()) {
    // The prefix is part of every key: it must keep keys within the safe alphabet.
    if (!chat::valid_blob_key(*prefix + "x"))
      return bad("bad prefix \"" + *prefix + "\" (a-z 0-9 / . _ -, like media/)");
    config.prefix = *prefix;
  }

  if (access_key_id.empty() || secret_access_key.empty())
    return make_error(errc::bad_request,
                      "s3: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)");
  config.creds = {std::string(access_key_id), std::string(secret_access_key),
                  std::string(session_token)};
  return config;
}

chat::result<s3_config> parse_s3_url_from_environment(std::string_view url) {
  auto env = [](const char* name) -> std::string_view {
    const char* value = std::getenv(name);
    return value ? value : "";
  };
  return parse_s3_url(url, env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
                      env("AWS_SESSION_TOKEN"));
}

std::string endpoint_url(const s3_config& config) {
  if (!config.endpoint_host.empty()) return config.scheme + "://" + config.endpoint_host;
  return "https://s3." + config.region + ".amazonaws.com";
}

s3_location locate(const s3_config& config, std::string_view object_key) {
  s3_location out;
  std::string service_host = config.endpoint_host.empty() ? "s3." + config.region + ".amazonaws.com"
                                                          : config.endpoint_host;
  std::string scheme = config.endpoint_host.empty() ? "https" : config.scheme;
  if (config.path_style) {
    out.host = service_host;
    out.path = "/" + config.bucket;
    if (!object_key.empty()) out.path.append("/").append(object_key);
  } else {
    out.host = config.bucket + "." + service_host;
    out.path = "/" + std::string(object_key);
  }
  out.url = scheme + "://" + out.host + uri_encode(out.path, /*keep_slash=*/true);
  return out;
}

}  // namespace parley::blob::s3
