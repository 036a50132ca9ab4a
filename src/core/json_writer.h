#pragma once
// The one JSON string escaper of the hub's own writers (the canonical sale bytes, the
// catalog body, store events): fixed, documented bytes, because canonical encodings are
// hashed. Pure; any thread.

#include <string>
#include <string_view>

namespace machub::core {

// Appends `s` to *out as a JSON string: quotes around it; '"' and '\\' escaped; control
// characters as \b \f \n \r \t, the others as \u00xx with lower-case hex; every other
// byte (non-ASCII UTF-8 included, and DEL) copied as is. The caller guarantees UTF-8.
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace machub::core
