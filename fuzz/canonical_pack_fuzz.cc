// Fuzz target: the journal's packed canonical (journal/canonical_pack.h). Arbitrary bytes
// given to UnpackCanonical must never crash and, when accepted, decode to exactly the
// length the header records; arbitrary text must round-trip through PackCanonical and
// through the uncompressed PackCanonicalStored.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "journal/canonical_pack.h"

using machub::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  machub::Result<std::string> unpacked = machub::journal::UnpackCanonical(bytes);
  if (unpacked.ok()) {
    Check(static_cast<int64_t>(unpacked->size()) ==
              machub::journal::CanonicalSize(bytes.data(), static_cast<int>(bytes.size()), true),
          "an accepted BLOB decodes to its recorded length");
  }
  machub::Result<std::string> back =
      machub::journal::UnpackCanonical(machub::journal::PackCanonical(bytes));
  Check(back.ok() && *back == bytes, "PackCanonical round-trips");
  back = machub::journal::UnpackCanonical(machub::journal::PackCanonicalStored(bytes));
  Check(back.ok() && *back == bytes, "PackCanonicalStored round-trips");
  return 0;
}
