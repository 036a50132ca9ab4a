#include "core/strings.h"

#include <gtest/gtest.h>

namespace machub::core {
namespace {

TEST(StringsTest, AsciiLowerFoldsOnlyAsciiLetters) {
  EXPECT_EQ(AsciiLower("Content-Length: 42"), "content-length: 42");
  EXPECT_EQ(AsciiLower(""), "");
  // UTF-8 bytes pass through untouched (no locale, no sign-extension surprises).
  EXPECT_EQ(AsciiLower("\xC3\x89T\xC3\xA9"), "\xC3\x89t\xC3\xA9");
  EXPECT_EQ(AsciiLower("@[`{"), "@[`{");  // the neighbours of A-Z and a-z
}

TEST(StringsTest, TrimVariants) {
  EXPECT_EQ(TrimSpaceTab(" \t chunked \t"), "chunked");
  EXPECT_EQ(TrimSpaceTab("\r\nx\r\n"), "\r\nx\r\n");  // OWS is spaces and tabs only
  EXPECT_EQ(TrimWhitespace("\r\n x y \t\r\n"), "x y");
  EXPECT_EQ(TrimWhitespace(" \t\r\n"), "");
  EXPECT_EQ(TrimWhitespace(""), "");
  EXPECT_EQ(TrimChars("--a-b--", "-"), "a-b");
}

}  // namespace
}  // namespace machub::core
