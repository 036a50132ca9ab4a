#pragma once
// LocalSink: an ObjectStore on a local folder, with the same key layout as the bucket
// (<root>/<key>), for running without any cloud (the embedded default) and for tests.
//
// Durability: Put writes a temporary file in the target folder, fsyncs it, moves it into
// place and fsyncs the folder; new parent folders are fsynced into their parents. When Put
// returns kCreated the object survives a power cut.
// Metadata: stored beside the object as "<key>.meta.json" ({"metadata": {...},
// "content_type", "content_encoding", "etag", "size"}), put in place before the object.
// The object file is the truth: metadata without an object (a crash between the two) is
// invisible and replaced by the next Put.
// No overwrite: with if_none_match the object is linked into place with link(2), which
// fails when the name exists, so of two racing writers (threads or processes) exactly one
// gets kCreated. Writers of one folder also serialize their commit on an flock(2) lock
// file, so the loser never replaces the winner's metadata.
// ETag: hex MD5 of the file's bytes, computed when read (Head/Get/List), like S3's ETag of
// a single-part upload.
// Keys: relative '/'-separated paths; refused (kInvalidArgument) when empty, absolute,
// with an empty, "." or ".." segment, a NUL, a segment starting with ".machub-" (reserved
// for temporary and lock files) or ending in ".meta.json".
// List: keys in byte order, 1000 a page; next_token is the last key of the page. Temporary
// files, metadata files and the lock file are never listed.
// Errors: ENOSPC, EIO, EROFS and other I/O failures -> kUnavailable (retryable: space can
// be freed, a disk remounted); EACCES/EPERM -> kUnauthorized; a key the file system cannot
// hold (too long, a file where a folder is needed) -> kInvalidArgument; a missing object
// -> kNotFound; an unreadable metadata file -> kInternal.
// Thread-safe; any number of LocalSinks (and processes) may share a folder.

#include <memory>
#include <string>

#include "cloud/object_store.h"
#include "core/status.h"

namespace machub::cloud {

struct LocalSinkOptions {
  std::string root;   // created (with parents) when missing
  bool fsync = true;  // false only in tests that measure nothing about durability
};

class LocalSink final : public ObjectStore {
 public:
  // kInvalidArgument for an empty root; kIoError when it cannot be created or is not a
  // folder.
  static Result<std::unique_ptr<LocalSink>> Open(LocalSinkOptions options);

  Result<PutOutcome> Put(const PutRequest& request) override;
  Result<ObjectInfo> Head(const std::string& key) override;
  Result<GetResult> Get(const std::string& key, const std::string& if_none_match = "") override;
  Result<ListResult> List(const std::string& prefix, const std::string& token = "") override;
  // kUnavailable when the root is gone or not writable (a removed USB disk, a read-only
  // remount): retryable, like a store that went away.
  Status Probe() override;
  std::string Describe() const override;  // "file:///absolute/root"

  const std::string& root() const { return options_.root; }

  // Checks a key against the rules above (exposed for tests and callers).
  static Status ValidateKey(const std::string& key);

 private:
  explicit LocalSink(LocalSinkOptions options) : options_(std::move(options)) {}

  LocalSinkOptions options_;
};

}  // namespace machub::cloud
