#pragma once
// Files and errno, in one place: the Status of a failed system call, a whole-file read
// and an atomic, durable whole-file replacement. Thread-safety: free functions, no shared state.

#include <string>
#include <string_view>

#include "core/status.h"

namespace machub::core {

// "<what>: <strerror(err)>" with `code` (default kIoError). `what` names the step and the
// file ("cannot open /x"); never put secrets in it.
Status ErrnoStatus(std::string_view what, int err, ErrorCode code = ErrorCode::kIoError);

// The whole file. kNotFound when it does not exist, kIoError (naming the path and the
// errno text) when it cannot be opened or read; never a partial read.
Result<std::string> ReadFileToString(const std::string& path);

// Writes `content` to `<path>.tmp.<pid>` (mode 0600), fsyncs it, renames it over `path`
// and fsyncs the folder: readers (and a restart after a crash or power cut) see the old or
// the new file, never half of one. kIoError naming the step; the old file is then intact.
Status ReplaceFileDurably(const std::string& path, const std::string& content);

}  // namespace machub::core
