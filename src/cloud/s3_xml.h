#pragma once
// Minimal XML reading for S3's answers (ListObjectsV2, error bodies): flat documents whose
// element names cannot occur inside text (a '<' in text is always escaped), so a scan is
// exact. Pure functions, any thread.

#include <string>
#include <string_view>
#include <vector>

namespace machub::cloud {

// Inner texts of every element `name` in document order, entities decoded (&amp; &lt;
// &gt; &quot; &apos; &#N; &#xH;); <name/> gives "".
std::vector<std::string> XmlElements(std::string_view xml, std::string_view name);
// The same, not decoded (views into `xml`).
std::vector<std::string_view> XmlRawElements(std::string_view xml, std::string_view name);
// The first element's decoded text, "" when there is none.
std::string FirstElement(std::string_view xml, std::string_view name);
// `text` with the entities above decoded; an unknown or malformed one is kept as it is.
std::string XmlDecode(std::string_view text);

}  // namespace machub::cloud
