#include "chat/gemma4_format.h"

#include <algorithm>
#include <cstdio>

namespace hearth::chat {

namespace {

constexpr const char* kQuote = "<|\"|>";

// ---- Jinja value semantics --------------------------------------------------------------------------

// Python truthiness of a value read from a mapping (a missing key is Undefined, which is false).
bool truthy(const json* v) {
  if (!v || v->is_null()) return false;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_string()) return !v->get_ref<const std::string&>().empty();
  if (v->is_array() || v->is_object()) return !v->empty();
  if (v->is_number_integer()) return v->get<int64_t>() != 0;
  if (v->is_number_unsigned()) return v->get<uint64_t>() != 0;
  return v->get<double>() != 0.0;
}

const json* get(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// How a number prints in the template (Python's str/repr of what json.loads gives).
std::string number_text(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  const double d = v.get<double>();
  std::string s = v.dump();  // shortest round-trip, like Python's repr
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  (void)d;
  return s;
}

// `{{ value }}` of a scalar.
std::string scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_null()) return "None";
  if (v.is_number()) return number_text(v);
  return v.dump();
}

std::string upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return s;
}
std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

// `| upper` of a value that may be missing (Undefined renders as "").
std::string upper_of(const json* v) { return v ? upper(scalar_text(*v)) : ""; }

// Keys in Jinja's `dictsort` order: case-insensitive, ties in (our) stored order.
std::vector<std::string> dictsort(const json& obj) {
  std::vector<std::string> keys;
  for (auto it = obj.begin(); it != obj.end(); ++it) keys.push_back(it.key());
  std::stable_sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) { return lower(a) < lower(b); });
  return keys;
}

void quoted(std::string& out, const std::string& s) {
  out += kQuote;
  out += s;
  out += kQuote;
}

// ---- tool declarations (the template's format_parameters / format_function_declaration) --------------

void format_parameters(std::string& out, const json& properties);

void format_property(std::string& out, const std::string& key, const json& value) {
  out += key;
  out += ":{";
  bool add_comma = false;
  auto comma = [&] {
    if (add_comma) out += ',';
    else add_comma = true;
  };
  if (truthy(get(value, "description"))) {
    out += "description:";
    quoted(out, scalar_text(value["description"]));
    add_comma = true;
  }
  if (truthy(get(value, "nullable"))) {
    comma();
    out += "nullable:true";
  }
  const std::string type = upper_of(get(value, "type"));
  if (type == "STRING") {
    if (truthy(get(value, "enum"))) {
      comma();
      out += "enum:" + gemma4_value(value["enum"], true);
    }
  } else if (type == "OBJECT") {
    out += ",properties:{";
    const json* props = get(value, "properties");
    if (props && props->is_object()) format_parameters(out, *props);
    else if (value.is_object()) format_parameters(out, value);
    out += '}';
    if (truthy(get(value, "required"))) {
      out += ",required:[";
      const json& req = value["required"];
      for (size_t i = 0; i < req.size(); ++i) {
        if (i) out += ',';
        quoted(out, scalar_text(req[i]));
      }
      out += ']';
    }
  } else if (type == "ARRAY") {
    const json* items = get(value, "items");
    if (items && items->is_object() && !items->empty()) {
      out += ",items:{";
      bool first = true;
      for (const std::string& ik : dictsort(*items)) {
        const json& iv = (*items)[ik];
        if (iv.is_null()) continue;
        if (!first) out += ',';
        first = false;
        if (ik == "properties") {
          out += "properties:{";
          if (iv.is_object()) format_parameters(out, iv);
          out += '}';
        } else if (ik == "required") {
          out += "required:[";
          for (size_t i = 0; i < iv.size(); ++i) {
            if (i) out += ',';
            quoted(out, scalar_text(iv[i]));
          }
          out += ']';
        } else if (ik == "type") {
          if (iv.is_string()) {
            out += "type:" + gemma4_value(upper(iv.get<std::string>()), true);
          } else {
            json up = json::array();
            for (const json& t : iv) up.push_back(upper(scalar_text(t)));
            out += "type:" + gemma4_value(up, true);
          }
        } else {
          out += ik + ":" + gemma4_value(iv, true);
        }
      }
      out += '}';
    }
  }
  comma();
  out += "type:";
  quoted(out, type);
  out += '}';
}

const char* const kStandardKeys[] = {"description", "type", "properties", "required", "nullable"};

void format_parameters(std::string& out, const json& properties) {
  bool first = true;
  for (const std::string& key : dictsort(properties)) {
    if (std::find(std::begin(kStandardKeys), std::end(kStandardKeys), key) != std::end(kStandardKeys)) continue;
    if (!first) out += ',';
    first = false;
    format_property(out, key, properties[key]);
  }
}

std::string format_function_declaration(const json& fn) {
  std::string out = "declaration:";
  out += fn.value("name", "");
  out += "{description:";
  const json* desc = get(fn, "description");
  quoted(out, desc ? scalar_text(*desc) : "");
  const json* params = get(fn, "parameters");
  if (truthy(params)) {
    out += ",parameters:{";
    if (truthy(get(*params, "properties"))) {
      out += "properties:{";
      format_parameters(out, (*params)["properties"]);
      out += "},";
    }
    if (truthy(get(*params, "required"))) {
      out += "required:[";
      const json& req = (*params)["required"];
      for (size_t i = 0; i < req.size(); ++i) {
        if (i) out += ',';
        quoted(out, scalar_text(req[i]));
      }
      out += "],";
    }
    if (truthy(get(*params, "type"))) {
      out += "type:";
      quoted(out, upper_of(get(*params, "type")));
      out += '}';
    }
  }
  if (const json* resp = get(fn, "response")) {
    out += ",response:{";
    if (truthy(get(*resp, "description"))) {
      out += "description:";
      quoted(out, scalar_text((*resp)["description"]));
      out += ',';
    }
    if (upper_of(get(*resp, "type")) == "OBJECT") {
      out += "type:";
      quoted(out, "OBJECT");
      out += '}';
    }
  }
  out += '}';
  return out;
}

// ---- message content ---------------------------------------------------------------------------------

// The template's strip_thinking: drop every `<|channel>…<channel|>` span, then trim.
std::string strip_thinking(const std::string& text) {
  std::string result;
  size_t pos = 0;
  while (true) {
    const size_t end = text.find("<channel|>", pos);
    const std::string part = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    const size_t open = part.find("<|channel>");
    result += open == std::string::npos ? part : part.substr(0, open);
    if (end == std::string::npos) break;
    pos = end + 10;
  }
  return jinja_trim(result);
}

std::string text_of_parts(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string s;
  if (content.is_array())
    for (const json& p : content) {
      if (p.is_string()) s += p.get<std::string>();
      else if (p.is_object() && p.value("type", "") == "text" && p.contains("text") && p["text"].is_string())
        s += p["text"].get<std::string>();
    }
  return s;
}

json canonical_parts(const json& content) {
  if (!content.is_array()) return content;
  json parts = json::array();
  for (const json& p : content) {
    if (p.is_string()) {
      parts.push_back({{"type", "text"}, {"text", p}});
      continue;
    }
    const std::string type = p.value("type", "");
    if (type == "text") parts.push_back({{"type", "text"}, {"text", p.value("text", "")}});
    else if (type == "image_url" || type == "image") parts.push_back({{"type", "image"}});
    else if (type == "input_audio" || type == "audio") parts.push_back({{"type", "audio"}});
    else if (type == "video_url" || type == "video") parts.push_back({{"type", "video"}});
  }
  return parts;
}

// Returns the media type of the last image/audio/video part ("" if none): the template tracks it.
std::string render_content(std::string& out, const json& content, bool model) {
  std::string media;
  if (content.is_string()) {
    out += model ? strip_thinking(content.get<std::string>()) : jinja_trim(content.get<std::string>());
  } else if (content.is_array()) {
    for (const json& item : content) {
      const std::string type = item.value("type", "");
      if (type == "text") {
        const std::string text = item.value("text", "");
        out += model ? strip_thinking(text) : jinja_trim(text);
      } else if (type == "image") {
        out += "\n\n<|image|>\n\n";
        media = type;
      } else if (type == "audio") {
        out += "<|audio|>";
        media = type;
      } else if (type == "video") {
        out += "\n\n<|video|>\n\n";
        media = type;
      }
    }
  }
  return media;
}

// The template's `if not message['content']`: null, "" and [] are empty.
bool content_empty(const json& c) { return c.is_null() || ((c.is_string() || c.is_array()) && c.empty()); }

}  // namespace

std::string jinja_trim(std::string_view s) {
  // Python's str.isspace set for the characters that occur in practice (UTF-8 encoded).
  static const char* const kSpaces[] = {" ", "\t", "\n", "\v", "\f", "\r", "\x1c", "\x1d", "\x1e", "\x1f",
                                        "\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81",
                                        "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84", "\xe2\x80\x85",
                                        "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89",
                                        "\xe2\x80\x8a", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf",
                                        "\xe2\x81\x9f", "\xe3\x80\x80"};
  auto space_at_start = [&](std::string_view t) -> size_t {
    for (const char* sp : kSpaces)
      if (t.starts_with(sp)) return std::char_traits<char>::length(sp);
    return 0;
  };
  auto space_at_end = [&](std::string_view t) -> size_t {
    for (const char* sp : kSpaces)
      if (t.ends_with(sp)) return std::char_traits<char>::length(sp);
    return 0;
  };
  while (size_t n = space_at_start(s)) s.remove_prefix(n);
  while (size_t n = space_at_end(s)) s.remove_suffix(n);
  return std::string(s);
}

std::string gemma4_value(const json& v, bool quote_keys) {
  std::string out;
  if (v.is_string()) {
    quoted(out, v.get<std::string>());
  } else if (v.is_boolean()) {
    out = v.get<bool>() ? "true" : "false";
  } else if (v.is_object()) {
    out += '{';
    bool first = true;
    for (const std::string& k : dictsort(v)) {
      if (!first) out += ',';
      first = false;
      if (quote_keys) quoted(out, k);
      else out += k;
      out += ':';
      out += gemma4_value(v[k], quote_keys);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ',';
      out += gemma4_value(v[i], quote_keys);
    }
    out += ']';
  } else {
    out = scalar_text(v);
  }
  return out;
}

std::vector<Gemma4Message> normalise_gemma4(const std::vector<Message>& messages) {
  std::vector<Gemma4Message> out;
  size_t i = 0;
  // Rules 1-2: leading system/developer messages → one system message.
  auto is_system = [](const std::string& role) { return role == "system" || role == "developer"; };
  if (!messages.empty() && is_system(messages[0].role)) {
    std::string text;
    for (; i < messages.size() && is_system(messages[i].role); ++i) {
      if (i) text += "\n\n";
      text += jinja_trim(text_of_parts(messages[i].content));
    }
    out.push_back({"system", json(text), {}, {}});
  }
  for (; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (m.role != "tool") {
      Gemma4Message g;
      g.role = m.role == "developer" ? "system" : m.role;
      g.content = canonical_parts(m.content);
      g.tool_calls = m.tool_calls;
      out.push_back(std::move(g));
      continue;
    }
    // Rule 4: a run of tool results joins the assistant message that made the calls.
    if (out.empty() || out.back().role != "assistant" || out.back().tool_calls.empty() ||
        !out.back().tool_responses.empty())
      out.push_back({"assistant", json(), {}, {}});
    Gemma4Message& holder = out.back();
    size_t pos = 0;
    for (; i < messages.size() && messages[i].role == "tool"; ++i, ++pos) {
      const Message& t = messages[i];
      ToolResponse r;
      for (const ToolCall& c : holder.tool_calls)
        if (!t.tool_call_id.empty() && c.id == t.tool_call_id) r.name = c.name;
      if (r.name.empty()) r.name = t.name;
      if (r.name.empty() && pos < holder.tool_calls.size()) r.name = holder.tool_calls[pos].name;
      if (r.name.empty()) r.name = "unknown";
      const std::string text = text_of_parts(t.content);
      json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
      r.response = parsed.is_discarded() ? json(text) : parsed;
      holder.tool_responses.push_back(std::move(r));
    }
    // Rule 5: the model's answer to the results continues the same model turn.
    if (i < messages.size() && messages[i].role == "assistant" && messages[i].tool_calls.empty()) {
      holder.content = canonical_parts(messages[i].content);
    } else {
      --i;  // the loop's ++i moves to the message after the run
    }
  }
  return out;
}

std::string render_gemma4(const ChatRequest& req, const RenderOptions& opt) {
  const std::vector<Gemma4Message> msgs = normalise_gemma4(req.messages);
  std::string out = "<bos>";
  std::string prev;  // the template's ns.prev_message_type
  size_t first = 0;
  const bool has_system = !msgs.empty() && msgs[0].role == "system";
  if (req.think || !req.tools.empty() || has_system) {
    out += "<|turn>system\n";
    if (req.think) out += "<|think|>";
    if (has_system) {
      out += jinja_trim(text_of_parts(msgs[0].content));
      first = 1;
    }
    for (const Tool& t : req.tools) out += "<|tool>" + jinja_trim(format_function_declaration(t.function)) + "<tool|>";
    out += "<turn|>\n";
  }
  for (size_t k = first; k < msgs.size(); ++k) {
    const Gemma4Message& m = msgs[k];
    prev.clear();
    const std::string role = m.role == "assistant" ? "model" : m.role;
    out += "<|turn>" + role + "\n";
    for (const ToolCall& c : m.tool_calls) {
      out += "<|tool_call>call:" + c.name + "{";
      if (c.arguments.is_object()) {
        bool first_arg = true;
        for (const std::string& key : dictsort(c.arguments)) {
          if (!first_arg) out += ',';
          first_arg = false;
          out += key + ":" + gemma4_value(c.arguments[key]);
        }
      } else if (c.arguments.is_string()) {
        out += c.arguments.get<std::string>();
      }
      out += "}<tool_call|>";
      prev = "tool_call";
    }
    for (const ToolResponse& r : m.tool_responses) {
      out += "<|tool_response>response:" + r.name + "{";
      if (r.response.is_object()) {
        bool first_key = true;
        for (const std::string& key : dictsort(r.response)) {
          if (!first_key) out += ',';
          first_key = false;
          out += key + ":" + gemma4_value(r.response[key]);
        }
      } else {
        out += "value:" + gemma4_value(r.response);
      }
      out += "}<tool_response|>";
      prev = "tool_response";
    }
    if (std::string media = render_content(out, m.content, role == "model"); !media.empty()) prev = media;
    if (!(!m.tool_responses.empty() && content_empty(m.content))) out += "<turn|>\n";
  }
  if (opt.add_generation_prompt) {
    if (prev != "tool_response") out += "<|turn>model\n";
    if (!req.think) out += "<|channel>thought\n<channel|>";
  }
  return out;
}

}  // namespace hearth::chat
