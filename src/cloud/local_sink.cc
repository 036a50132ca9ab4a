#include "cloud/local_sink.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <system_error>
#include <utility>
#include <vector>

#include "core/sha256.h"

namespace machub::cloud {
namespace {

namespace fs = std::filesystem;

constexpr const char* kReservedPrefix = ".machub-";
constexpr const char* kTempPrefix = ".machub-tmp-";
constexpr const char* kLockName = ".machub-lock";
constexpr std::string_view kMetaSuffix = ".meta.json";
constexpr size_t kPageSize = 1000;

// errno -> Status, in one place (see the header for the why of each class).
Status ErrnoStatus(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return Status(ErrorCode::kNotFound, msg);
    case EACCES:
    case EPERM:
      return Status(ErrorCode::kUnauthorized, msg);
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
    case EEXIST:
    case ELOOP:
      return Status(ErrorCode::kInvalidArgument, msg);
    default:
      return Status(ErrorCode::kUnavailable, msg);
  }
}

// On the write path a missing file or folder means the root went away (an unmounted
// disk): retryable, unlike a missing object on the read path.
Status WriteError(int err, const std::string& what) {
  if (err == ENOENT) return Status(ErrorCode::kUnavailable, what + ": " + std::strerror(err));
  return ErrnoStatus(err, what);
}

std::string TempName() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s%d-%llu-%016llx", kTempPrefix, static_cast<int>(getpid()),
                static_cast<unsigned long long>(counter.fetch_add(1)),
                static_cast<unsigned long long>(rng()));
  return buf;
}

Status FsyncPath(const std::string& path, bool enabled) {
  if (!enabled) return Status::Ok();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECTORY);
  if (fd < 0) return WriteError(errno, "open folder " + path);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return WriteError(err, "fsync folder " + path);
  return Status::Ok();
}

// mkdir -p below `root` (which exists), fsyncing each new folder into its parent so the
// path to a committed object survives a power cut too.
Status MakeFolders(const std::string& root, const std::string& relative, bool sync) {
  std::string path = root;
  size_t start = 0;
  while (start < relative.size()) {
    size_t slash = relative.find('/', start);
    if (slash == std::string::npos) slash = relative.size();
    std::string parent = path;
    path += '/';
    path.append(relative, start, slash - start);
    start = slash + 1;
    if (mkdir(path.c_str(), 0755) == 0) {
      RETURN_IF_ERROR(FsyncPath(parent.empty() ? "/" : parent, sync));
      continue;
    }
    if (errno != EEXIST) return WriteError(errno, "create folder " + path);
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return WriteError(errno, "stat " + path);
    if (!S_ISDIR(st.st_mode)) {
      return Status(ErrorCode::kInvalidArgument,
                    "an object already exists where the key needs a folder: " + path, "key");
    }
  }
  return Status::Ok();
}

// Creates `path` exclusively and writes `data` to it, fsynced.
Status WriteNewFile(const std::string& path, std::string_view data, bool sync) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return WriteError(errno, "create " + path);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return WriteError(err, "write " + path);
    }
    done += static_cast<size_t>(n);
  }
  if (sync && fsync(fd) != 0) {
    int err = errno;
    close(fd);
    return WriteError(err, "fsync " + path);
  }
  if (close(fd) != 0) return WriteError(errno, "close " + path);
  return Status::Ok();
}

Status ReadWholeFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Status(ErrorCode::kNotFound, "not a regular file: " + path);
  }
  out->clear();
  out->reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return ErrnoStatus(err, "read " + path);
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return Status::Ok();
}

bool IsHiddenName(std::string_view name) {
  return name.starts_with(kReservedPrefix) || name.ends_with(kMetaSuffix);
}

// Holds an flock(2) on <root>/.machub-lock while alive. flock locks belong to the open
// file description, so two threads of one process exclude each other as well.
class FolderLock {
 public:
  static Result<FolderLock> Acquire(const std::string& root) {
    std::string path = root + "/" + kLockName;
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return WriteError(errno, "open " + path);
    while (flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return WriteError(err, "lock " + path);
    }
    return FolderLock(fd);
  }
  FolderLock(FolderLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FolderLock& operator=(FolderLock&&) = delete;
  ~FolderLock() {
    if (fd_ >= 0) close(fd_);  // releases the lock
  }

 private:
  explicit FolderLock(int fd) : fd_(fd) {}
  int fd_;
};

// Moves `from` to `to` unless `to` exists. True when moved, false when `to` existed.
Result<bool> MoveNoReplace(const std::string& from, const std::string& to) {
  if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno == EEXIST) return false;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
    return WriteError(errno, "rename " + from);
  }
  // A file system without renameat2 flags: link(2) also refuses an existing name.
  if (link(from.c_str(), to.c_str()) == 0) {
    unlink(from.c_str());
    return true;
  }
  if (errno == EEXIST) return false;
  if (errno != EPERM && errno != ENOTSUP) return WriteError(errno, "link " + from);
  // No hard links either (vfat): the folder lock held by our caller keeps cooperating
  // writers out between this check and the rename.
  struct stat st;
  if (lstat(to.c_str(), &st) == 0) return false;
  if (rename(from.c_str(), to.c_str()) != 0) return WriteError(errno, "rename " + from);
  return true;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

}  // namespace

Status LocalSink::ValidateKey(const std::string& key) {
  if (key.empty()) return Status(ErrorCode::kInvalidArgument, "empty key", "key");
  if (key.front() == '/') {
    return Status(ErrorCode::kInvalidArgument, "absolute key refused: " + key, "key");
  }
  if (key.find('\0') != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument, "key contains NUL", "key");
  }
  size_t start = 0;
  while (start <= key.size()) {
    size_t slash = key.find('/', start);
    if (slash == std::string::npos) slash = key.size();
    std::string_view segment(key.data() + start, slash - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return Status(ErrorCode::kInvalidArgument,
                    "key with an empty, '.' or '..' segment refused: " + key, "key");
    }
    if (segment.starts_with(kReservedPrefix) || segment.ends_with(kMetaSuffix)) {
      return Status(ErrorCode::kInvalidArgument,
                    "key uses a reserved name (.machub-*, *.meta.json): " + key, "key");
    }
    start = slash + 1;
  }
  return Status::Ok();
}

Result<std::unique_ptr<LocalSink>> LocalSink::Open(LocalSinkOptions options) {
  if (options.root.empty()) {
    return Status(ErrorCode::kInvalidArgument, "local sink folder is empty", "root");
  }
  std::error_code ec;
  fs::path root = fs::absolute(options.root, ec).lexically_normal();
  if (ec)
    return Status(ErrorCode::kIoError, "local sink folder " + options.root + ": " + ec.message());
  std::string text = root.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  // Create missing folders one by one from "/" so each new one is fsynced into its parent.
  Status made = MakeFolders("", text.substr(1), options.fsync);
  if (!made.ok()) {
    return Status(ErrorCode::kIoError, "local sink folder " + text + ": " + made.message());
  }
  options.root = text;
  return std::unique_ptr<LocalSink>(new LocalSink(std::move(options)));
}

std::string LocalSink::Describe() const { return "file://" + options_.root; }

Status LocalSink::Probe() {
  struct stat st;
  if (stat(options_.root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status(ErrorCode::kUnavailable, "local sink folder is missing: " + options_.root);
  }
  if (access(options_.root.c_str(), W_OK) != 0) {
    return Status(ErrorCode::kUnavailable, "local sink folder is not writable: " + options_.root);
  }
  return Status::Ok();
}

Result<PutOutcome> LocalSink::Put(const PutRequest& request) {
  RETURN_IF_ERROR(ValidateKey(request.key));
  const bool sync = options_.fsync;
  const std::string path = options_.root + "/" + request.key;
  const std::string meta_path = path + std::string(kMetaSuffix);
  size_t slash = request.key.rfind('/');
  const std::string relative_dir = slash == std::string::npos ? "" : request.key.substr(0, slash);
  const std::string dir = relative_dir.empty() ? options_.root : options_.root + "/" + relative_dir;

  if (request.if_none_match && Exists(path)) return PutOutcome::kAlreadyExists;
  RETURN_IF_ERROR(MakeFolders(options_.root, relative_dir, sync));

  nlohmann::json meta = {{"metadata", request.metadata},
                         {"content_type", request.content_type},
                         {"content_encoding", request.content_encoding},
                         {"etag", core::Md5Hex(request.body)},
                         {"size", request.body.size()}};
  // The slow part (writing and flushing the bytes) happens outside the folder lock.
  const std::string body_tmp = dir + "/" + TempName();
  const std::string meta_tmp = dir + "/" + TempName();
  auto cleanup = [&] {
    unlink(body_tmp.c_str());
    unlink(meta_tmp.c_str());
  };
  Status written = WriteNewFile(body_tmp, request.body, sync);
  if (written.ok()) written = WriteNewFile(meta_tmp, meta.dump(), sync);
  if (!written.ok()) {
    cleanup();
    return written;
  }

  Result<FolderLock> lock = FolderLock::Acquire(options_.root);
  if (!lock.ok()) {
    cleanup();
    return lock.status();
  }
  if (request.if_none_match && Exists(path)) {
    cleanup();
    return PutOutcome::kAlreadyExists;
  }
  // Metadata first: once the object is visible its metadata is already in place.
  if (rename(meta_tmp.c_str(), meta_path.c_str()) != 0) {
    Status st = WriteError(errno, "rename " + meta_path);
    cleanup();
    return st;
  }
  if (request.if_none_match) {
    Result<bool> moved = MoveNoReplace(body_tmp, path);
    if (!moved.ok() || !*moved) {
      cleanup();
      if (!moved.ok()) return moved.status();
      return PutOutcome::kAlreadyExists;
    }
  } else if (rename(body_tmp.c_str(), path.c_str()) != 0) {
    Status st = WriteError(errno, "rename " + path);
    cleanup();
    return st;
  }
  RETURN_IF_ERROR(FsyncPath(dir, sync));
  return PutOutcome::kCreated;
}

Result<ObjectInfo> LocalSink::Head(const std::string& key) {
  RETURN_IF_ERROR(ValidateKey(key));
  const std::string path = options_.root + "/" + key;
  std::string body;
  RETURN_IF_ERROR(ReadWholeFile(path, &body));
  ObjectInfo info;
  info.etag = core::Md5Hex(body);
  info.size = static_cast<int64_t>(body.size());
  std::string meta_text;
  Status meta_read = ReadWholeFile(path + std::string(kMetaSuffix), &meta_text);
  if (meta_read.code() == ErrorCode::kNotFound) return info;  // written by hand: no metadata
  RETURN_IF_ERROR(meta_read);
  nlohmann::json meta = nlohmann::json::parse(meta_text, nullptr, /*allow_exceptions=*/false);
  if (!meta.is_object() || !meta.contains("metadata") || !meta["metadata"].is_object()) {
    return Status(ErrorCode::kInternal, "unreadable metadata file for " + key);
  }
  for (const auto& [name, value] : meta["metadata"].items()) {
    if (value.is_string()) info.metadata[name] = value.get<std::string>();
  }
  return info;
}

Result<GetResult> LocalSink::Get(const std::string& key, const std::string& if_none_match) {
  RETURN_IF_ERROR(ValidateKey(key));
  GetResult result;
  RETURN_IF_ERROR(ReadWholeFile(options_.root + "/" + key, &result.body));
  result.etag = core::Md5Hex(result.body);
  std::string wanted = if_none_match;
  if (wanted.size() >= 2 && wanted.front() == '"' && wanted.back() == '"') {
    wanted = wanted.substr(1, wanted.size() - 2);
  }
  if (!wanted.empty() && wanted == result.etag) {
    result.not_modified = true;
    result.body.clear();
  }
  return result;
}

Result<ListResult> LocalSink::List(const std::string& prefix, const std::string& token) {
  // Walk only the deepest folder the prefix names ("sales/store=S1/da" -> sales/store=S1).
  size_t slash = prefix.rfind('/');
  std::string start = options_.root;
  if (slash != std::string::npos) {
    start += '/';
    start.append(prefix, 0, slash);
  }
  std::vector<std::string> keys;
  std::error_code ec;
  fs::recursive_directory_iterator it(start, fs::directory_options::none, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
      return ListResult{};
    }
    return ErrnoStatus(ec.value(), "list " + start);
  }
  const size_t root_len = options_.root.size() + 1;
  for (fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) return ErrnoStatus(ec.value(), "list " + start);
    const fs::directory_entry& entry = *it;
    std::string name = entry.path().filename().string();
    if (IsHiddenName(name)) {
      if (entry.is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!entry.is_regular_file(ec) || entry.is_symlink(ec)) continue;
    std::string key = entry.path().string().substr(root_len);
    if (!key.starts_with(prefix) || (!token.empty() && key <= token)) continue;
    keys.push_back(std::move(key));
  }
  std::sort(keys.begin(), keys.end());
  ListResult result;
  for (size_t i = 0; i < keys.size() && i < kPageSize; ++i) {
    std::string body;
    Status read = ReadWholeFile(options_.root + "/" + keys[i], &body);
    if (read.code() == ErrorCode::kNotFound) continue;  // removed while we listed
    RETURN_IF_ERROR(read);
    ObjectInfo info;
    info.etag = core::Md5Hex(body);
    info.size = static_cast<int64_t>(body.size());
    result.objects.emplace_back(keys[i], std::move(info));
  }
  if (keys.size() > kPageSize) result.next_token = keys[kPageSize - 1];
  return result;
}

}  // namespace machub::cloud
