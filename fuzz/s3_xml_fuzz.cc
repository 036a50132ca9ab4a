// Fuzz target: the S3 XML answers the client reads (cloud::XmlElements, XmlDecode, and
// MapS3Error on an error body's Code/Message). The ListObjectsV2 walk itself
// (S3Client::List: Contents -> Key, ETag, Size; IsTruncated, NextContinuationToken) is not
// exposed, so it is rebuilt here from the same helpers over the same element names.
// Must never crash; decoded text is never longer than its source (entities only shrink)
// and decoding text without '&' is the identity.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cloud/s3_client.h"
#include "fuzz_check.h"

using machub::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace machub::cloud;
  const std::string_view xml = machub::fuzz::AsText(data, size);

  const std::string decoded = XmlDecode(xml);
  Check(decoded.size() <= xml.size(), "XmlDecode grew the text");
  if (xml.find('&') == std::string_view::npos)
    Check(decoded == xml, "XmlDecode changed plain text");

  // ListObjectsV2 page.
  for (const std::string& contents : XmlElements(xml, "Contents")) {
    for (const char* name : {"Key", "ETag", "Size", "LastModified"}) {
      for (const std::string& value : XmlElements(contents, name)) {
        Check(value.size() <= contents.size(), "element longer than its parent");
      }
    }
    const auto sizes = XmlElements(contents, "Size");
    if (!sizes.empty()) (void)std::strtoll(sizes.front().c_str(), nullptr, 10);
  }
  const auto truncated = XmlElements(xml, "IsTruncated");
  const auto token = XmlElements(xml, "NextContinuationToken");
  (void)truncated;
  (void)token;

  // Error body.
  const auto code = XmlElements(xml, "Code");
  const auto message = XmlElements(xml, "Message");
  const std::string c = code.empty() ? "" : code.front();
  const std::string m = message.empty() ? "" : message.front();
  for (int http_status : {400, 403, 404, 409, 412, 500, 503}) {
    machub::Status st = MapS3Error("PUT", "sales/x.gz", http_status, c, m, 0, "");
    Check(!st.ok(), "an S3 error mapped to OK");
  }
  return 0;
}
