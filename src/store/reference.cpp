#include "store/reference.h"

#include <cstdlib>

#include "core/error.h"
#include "store/store.h"

namespace hearth::store {

namespace {
bool is_name_char(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') return true;
  return !first && (c == '.' || c == '-');
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) out += char(c);
    else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  while (true) {
    const size_t j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}
}  // namespace

void validate_component(const std::string& s, const std::string& what) {
  if (s.empty()) throw Error(what + " is empty");
  if (s.size() > 128) throw Error(what + " '" + printable(s.substr(0, 40)) + "...' is longer than 128 bytes");
  if (s == "." || s == "..") throw Error(what + " '" + s + "' is not allowed");
  for (size_t i = 0; i < s.size(); ++i)
    if (!is_name_char(s[i], i == 0))
      throw Error(what + " '" + printable(s) + "' has a character that is not allowed (" +
                  (s[i] == '\0' ? std::string("NUL") : "'" + printable(std::string(1, s[i])) + "'") +
                  "; use letters, digits, '_', '-', '.')");
}

void validate_repo_file(const std::string& s) {
  if (s.empty() || s.size() > 1024) throw Error("file name '" + printable(s) + "' is empty or too long");
  if (s[0] == '/') throw Error("file name '" + printable(s) + "' is an absolute path");
  for (const std::string& c : split(s, '/')) validate_component(c, "file name component");
}

std::string digest_hex(const std::string& digest) {
  const std::string p = "sha256:";
  if (digest.size() != p.size() + 64 || digest.compare(0, p.size(), p) != 0)
    throw Error("'" + printable(digest.substr(0, 80)) + "' is not a sha256 digest");
  const std::string hex = digest.substr(p.size());
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      throw Error("'" + printable(digest.substr(0, 80)) + "' is not a sha256 digest (lowercase hex expected)");
  return hex;
}

std::string Reference::repo_path() const {
  std::string out;
  for (const std::string& c : repo) out += (out.empty() ? "" : "/") + c;
  return out;
}

std::string Reference::canonical() const {
  if (kind == RefKind::Path) return path;
  return host + "/" + repo_path() + ":" + tag;
}

Reference parse_reference(const std::string& text) {
  if (text.empty()) throw Error("empty model reference");
  if (text.find('\0') != std::string::npos) throw Error("model reference contains a NUL byte");
  if (text.find('\\') != std::string::npos)
    throw Error("model reference '" + printable(text) + "' contains a backslash");
  Reference r;
  const bool pathlike = text[0] == '/' || text.rfind("./", 0) == 0 || text.rfind("../", 0) == 0 ||
                        text.rfind("~/", 0) == 0 ||
                        (text.size() > 5 && text.compare(text.size() - 5, 5, ".gguf") == 0);
  if (pathlike) {
    r.kind = RefKind::Path;
    r.path = text;
    if (text.rfind("~/", 0) == 0) {
      const char* home = std::getenv("HOME");
      r.path = std::string(home ? home : "") + text.substr(1);
    }
    return r;
  }

  std::string s = text;
  for (const char* scheme : {"https://", "http://"})
    if (s.rfind(scheme, 0) == 0) s = s.substr(std::string(scheme).size());
  // Aliases.
  if (s.find('/') == std::string::npos) {
    for (const auto& [a, target] : aliases(default_root())) {
      if (a == s) {
        Reference t = parse_reference(target);
        t.alias = a;
        return t;
      }
    }
  }

  std::string name = s, tag;
  const size_t slash = s.rfind('/');
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    name = s.substr(0, colon);
    tag = s.substr(colon + 1);
    validate_component(tag, "tag");
  }
  std::vector<std::string> parts = split(name, '/');
  if (parts[0] == "hf.co" || parts[0] == "huggingface.co") {
    if (parts.size() != 3) throw Error("'" + printable(text) + "': expected hf.co/ORG/REPO[:QUANT]");
    r.kind = RefKind::HuggingFace;
    r.host = "hf.co";
    validate_component(parts[1], "organisation");
    validate_component(parts[2], "repository");
    r.repo = {parts[1], parts[2]};
    r.tag = tag.empty() ? "Q4_K_M" : tag;
    return r;
  }
  r.kind = RefKind::Oci;
  r.tag = tag.empty() ? "latest" : tag;
  // "local/NAME": a model imported from a file. A first component with a dot or a port is a registry host.
  if (parts.size() > 1 && parts[0] == "local") {
    r.host = "local";
    parts.erase(parts.begin());
  } else if (parts.size() > 1 && (parts[0].find('.') != std::string::npos || parts[0].find(':') != std::string::npos ||
                           parts[0] == "localhost")) {
    r.host = parts[0];
    parts.erase(parts.begin());
    const size_t c = r.host.find(':');
    validate_component(r.host.substr(0, c), "registry host");
    if (c != std::string::npos) {
      const std::string port = r.host.substr(c + 1);
      if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        throw Error("registry host '" + printable(r.host) + "' has an invalid port");
    }
  } else if (parts.size() == 1) {
    r.host = "registry.ollama.ai";
    r.ollama = true;
    parts.insert(parts.begin(), "library");
  } else {
    r.host = "registry-1.docker.io";
  }
  if (r.host == "registry.ollama.ai") r.ollama = true;
  if (parts.size() > 8) throw Error("'" + printable(text) + "' has too many path components");
  for (const std::string& p : parts) validate_component(p, "name component");
  r.repo = parts;
  return r;
}

}  // namespace hearth::store
