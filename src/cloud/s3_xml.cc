// Minimal XML reading for S3's answers (s3_xml.h): flat documents, no DTD, no namespaces
// to resolve; what the client needs from ListObjectsV2 and error bodies.
#include "cloud/s3_xml.h"

#include <cstdint>

namespace machub::cloud {
namespace {

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Inner texts of every <name ...>...</name> (and <name/>), not decoded. Element names
// cannot occur inside text (a '<' in text is always escaped), so a scan is exact for the
// flat documents S3 answers with.
std::vector<std::string_view> XmlRaw(std::string_view xml, std::string_view name) {
  std::vector<std::string_view> out;
  // Appended, not `"<" + std::string(name)`: GCC 12 at -O3 for aarch64 reports a false
  // -Wrestrict on that (GCC bug 105329) and the cross build treats warnings as errors.
  std::string open(1, '<');
  open.append(name);
  std::string close("</");
  close.append(name).push_back('>');
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    size_t after = pos + open.size();
    if (after >= xml.size()) break;
    char c = xml[after];
    if (c != '>' && c != '/' && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      pos = after;  // a longer name with the same start ("<KeyCount" for "Key")
      continue;
    }
    size_t gt = xml.find('>', after);
    if (gt == std::string_view::npos) break;
    if (xml[gt - 1] == '/') {  // <name/> or <name attr="..."/>
      out.emplace_back();
      pos = gt + 1;
      continue;
    }
    size_t end = xml.find(close, gt + 1);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(gt + 1, end - gt - 1));
    pos = end + close.size();
  }
  return out;
}

}  // namespace

std::string XmlDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out.push_back(text[i]);
      continue;
    }
    size_t semi = text.find(';', i + 1);
    if (semi == std::string_view::npos || semi - i > 12) {
      out.push_back('&');
      continue;
    }
    std::string_view ent = text.substr(i + 1, semi - i - 1);
    bool known = true;
    if (ent == "amp") {
      out.push_back('&');
    } else if (ent == "lt") {
      out.push_back('<');
    } else if (ent == "gt") {
      out.push_back('>');
    } else if (ent == "quot") {
      out.push_back('"');
    } else if (ent == "apos") {
      out.push_back('\'');
    } else if (ent.size() >= 2 && ent[0] == '#') {
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      std::string_view digits = ent.substr(hex ? 2 : 1);
      uint32_t cp = 0;
      known = !digits.empty();
      for (char c : digits) {
        int v = -1;
        if (c >= '0' && c <= '9') v = c - '0';
        if (hex && c >= 'a' && c <= 'f') v = c - 'a' + 10;
        if (hex && c >= 'A' && c <= 'F') v = c - 'A' + 10;
        if (v < 0 || cp > 0x10FFFF) {
          known = false;
          break;
        }
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
      }
      if (known && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF)) {
        AppendUtf8(cp, &out);
      } else {
        known = false;
      }
    } else {
      known = false;
    }
    if (!known) {
      out.push_back('&');  // not an entity we know: keep the text as it is
      continue;
    }
    i = semi;
  }
  return out;
}

std::vector<std::string> XmlElements(std::string_view xml, std::string_view name) {
  std::vector<std::string> out;
  for (std::string_view raw : XmlRaw(xml, name)) out.push_back(XmlDecode(raw));
  return out;
}

std::string FirstElement(std::string_view xml, std::string_view name) {
  std::vector<std::string_view> raw = XmlRaw(xml, name);
  return raw.empty() ? std::string() : XmlDecode(raw.front());
}

std::vector<std::string_view> XmlRawElements(std::string_view xml, std::string_view name) {
  return XmlRaw(xml, name);
}

}  // namespace machub::cloud
