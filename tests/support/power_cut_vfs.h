#pragma once
// PowerCutVfs: an SQLite VFS shim that models a power cut (test support, never in the hub).
//
// A SIGKILL keeps everything that reached the page cache; a power cut keeps only what was
// fsync'd. The shim sits over the default VFS (registered as the new default, so every
// connection of the process goes through it) and keeps, per file path, an undo log of
// every write and truncate since that file's last xSync. CutPower() makes every later
// write, truncate, sync and delete fail (nothing more reaches the disk); after all
// connections are closed, RestoreToLastSync() rolls every file back to its state at its
// last successful xSync: unsynced writes are undone, the size is the synced size, and a
// file created and never synced disappears (its directory entry was never made durable).
// Then the power is on again.
//
// What it does not model: torn sector writes inside one xWrite, reordering of synced
// writes (fsync is a full barrier here, as on a sane disk), unsynced deletes coming back,
// and the WAL index (-shm), which SQLite maps itself and rebuilds from the WAL when the
// first connection opens after a crash. The model follows leveldb's
// fault_injection_test ("drop unsynced data"), at the level of SQLite's VFS.
//
// Thread-safe: one mutex around every tracked operation, so a cut is atomic with respect
// to writes in flight.

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace machub::testing {

class PowerCutVfs {
 public:
  struct Counters {
    int64_t writes = 0;
    int64_t syncs = 0;
    int64_t refused = 0;         // operations refused while the power was out
    int64_t undone_records = 0;  // writes/truncates rolled back by the last restore
    int64_t removed_files = 0;   // never-synced files removed by the last restore
  };

  // Registers the shim as the default VFS over the current default. One per process.
  static PowerCutVfs& Install() {
    static PowerCutVfs* instance = [] {
      auto* v = new PowerCutVfs();
      v->base_ = sqlite3_vfs_find(nullptr);
      v->vfs_ = *v->base_;
      v->vfs_.zName = "power_cut";
      v->vfs_.szOsFile = static_cast<int>(sizeof(File)) + v->base_->szOsFile;
      v->vfs_.pAppData = v;
      v->vfs_.pNext = nullptr;
      v->vfs_.xOpen = &Open;
      v->vfs_.xDelete = &Delete;
      sqlite3_vfs_register(&v->vfs_, /*makeDflt=*/1);
      return v;
    }();
    return *instance;
  }

  void CutPower() {
    std::lock_guard<std::mutex> lock(mu_);
    power_on_ = false;
  }

  // Call with every connection closed.
  void RestoreToLastSync() {
    std::lock_guard<std::mutex> lock(mu_);
    counters_.undone_records = 0;
    counters_.removed_files = 0;
    for (auto& [path, state] : files_) {
      if (state.created && !state.ever_synced) {
        if (unlink(path.c_str()) == 0) ++counters_.removed_files;
        continue;
      }
      if (state.undo.empty()) continue;
      const int fd = open(path.c_str(), O_RDWR);
      if (fd < 0) continue;  // deleted meanwhile (deletes are durable here)
      for (auto it = state.undo.rbegin(); it != state.undo.rend(); ++it) {
        if (!it->old_bytes.empty()) {
          (void)!pwrite(fd, it->old_bytes.data(), it->old_bytes.size(), it->offset);
        }
        ++counters_.undone_records;
      }
      (void)!ftruncate(fd, state.synced_size);
      close(fd);
    }
    files_.clear();
    power_on_ = true;
  }

  Counters counters() const {
    std::lock_guard<std::mutex> lock(mu_);
    return counters_;
  }

 private:
  struct Undo {
    sqlite3_int64 offset = 0;
    std::string old_bytes;  // what was there before (empty past the old end of file)
  };
  struct PathState {
    bool created = false;      // did not exist when first opened through the shim
    bool ever_synced = false;  // its directory entry counts as durable from the first sync
    sqlite3_int64 synced_size = 0;
    std::vector<Undo> undo;  // since the last sync, oldest first
  };
  struct File {
    sqlite3_file header;  // pMethods = &kMethods
    PowerCutVfs* vfs;
    std::string path;    // empty: not tracked (temporary files)
    sqlite3_file* real;  // the base VFS's file, right after this struct
  };

  static PowerCutVfs* Of(sqlite3_vfs* v) { return static_cast<PowerCutVfs*>(v->pAppData); }
  static File* F(sqlite3_file* f) { return reinterpret_cast<File*>(f); }

  static sqlite3_int64 SizeOf(sqlite3_file* real) {
    sqlite3_int64 size = 0;
    real->pMethods->xFileSize(real, &size);
    return size;
  }
  // The bytes [offset, offset + n) clipped to the current size.
  static std::string ReadOld(sqlite3_file* real, sqlite3_int64 offset, sqlite3_int64 n) {
    const sqlite3_int64 size = SizeOf(real);
    if (offset >= size) return {};
    std::string out(static_cast<size_t>(std::min(n, size - offset)), '\0');
    real->pMethods->xRead(real, out.data(), static_cast<int>(out.size()), offset);
    return out;
  }

  static int Open(sqlite3_vfs* v, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    PowerCutVfs* self = Of(v);
    File* f = F(file);
    f->header.pMethods = nullptr;
    f->vfs = self;
    new (&f->path) std::string();
    f->real = reinterpret_cast<sqlite3_file*>(f + 1);
    bool existed = false;
    if (name != nullptr) {
      struct stat st {};
      existed = stat(name, &st) == 0;
    }
    const int rc = self->base_->xOpen(self->base_, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
      f->path.~basic_string();
      return rc;
    }
    if (name != nullptr && (flags & SQLITE_OPEN_DELETEONCLOSE) == 0) {
      f->path = name;
      std::lock_guard<std::mutex> lock(self->mu_);
      auto [it, inserted] = self->files_.try_emplace(f->path);
      if (inserted) {
        it->second.created = !existed;
        it->second.synced_size = existed ? SizeOf(f->real) : 0;
      }
    }
    f->header.pMethods = &kMethods;
    return SQLITE_OK;
  }

  static int Delete(sqlite3_vfs* v, const char* name, int sync_dir) {
    PowerCutVfs* self = Of(v);
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (!self->power_on_) {
        ++self->counters_.refused;
        return SQLITE_IOERR_DELETE;
      }
      self->files_.erase(name);
    }
    return self->base_->xDelete(self->base_, name, sync_dir);
  }

  static int Close(sqlite3_file* file) {
    File* f = F(file);
    const int rc = f->real->pMethods != nullptr ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    f->path.~basic_string();
    return rc;
  }
  static int Read(sqlite3_file* file, void* buf, int n, sqlite3_int64 offset) {
    sqlite3_file* real = F(file)->real;
    return real->pMethods->xRead(real, buf, n, offset);
  }
  static int Write(sqlite3_file* file, const void* buf, int n, sqlite3_int64 offset) {
    File* f = F(file);
    PowerCutVfs* self = f->vfs;
    std::lock_guard<std::mutex> lock(self->mu_);
    if (!self->power_on_) {
      ++self->counters_.refused;
      return SQLITE_IOERR_WRITE;
    }
    if (!f->path.empty()) {
      auto it = self->files_.find(f->path);
      if (it != self->files_.end()) {
        it->second.undo.push_back(Undo{offset, ReadOld(f->real, offset, n)});
      }
    }
    ++self->counters_.writes;
    return f->real->pMethods->xWrite(f->real, buf, n, offset);
  }
  static int Truncate(sqlite3_file* file, sqlite3_int64 size) {
    File* f = F(file);
    PowerCutVfs* self = f->vfs;
    std::lock_guard<std::mutex> lock(self->mu_);
    if (!self->power_on_) {
      ++self->counters_.refused;
      return SQLITE_IOERR_TRUNCATE;
    }
    if (!f->path.empty()) {
      auto it = self->files_.find(f->path);
      const sqlite3_int64 current = SizeOf(f->real);
      if (it != self->files_.end() && size < current) {
        it->second.undo.push_back(Undo{size, ReadOld(f->real, size, current - size)});
      }
    }
    return f->real->pMethods->xTruncate(f->real, size);
  }
  static int Sync(sqlite3_file* file, int flags) {
    File* f = F(file);
    PowerCutVfs* self = f->vfs;
    std::lock_guard<std::mutex> lock(self->mu_);
    if (!self->power_on_) {
      ++self->counters_.refused;
      return SQLITE_IOERR_FSYNC;
    }
    const int rc = f->real->pMethods->xSync(f->real, flags);
    if (rc == SQLITE_OK && !f->path.empty()) {
      auto it = self->files_.find(f->path);
      if (it != self->files_.end()) {
        // fsync on any descriptor makes the whole file durable.
        it->second.undo.clear();
        it->second.synced_size = SizeOf(f->real);
        it->second.ever_synced = true;
      }
      ++self->counters_.syncs;
    }
    return rc;
  }
  static int FileSize(sqlite3_file* file, sqlite3_int64* size) {
    sqlite3_file* real = F(file)->real;
    return real->pMethods->xFileSize(real, size);
  }
  static int Lock(sqlite3_file* file, int level) {
    sqlite3_file* real = F(file)->real;
    return real->pMethods->xLock(real, level);
  }
  static int Unlock(sqlite3_file* file, int level) {
    sqlite3_file* real = F(file)->real;
    return real->pMethods->xUnlock(real, level);
  }
  static int CheckReservedLock(sqlite3_file* file, int* out) {
    sqlite3_file* real = F(file)->real;
    return real->pMethods->xCheckReservedLock(real, out);
  }
  static int FileControl(sqlite3_file* file, int op, void* arg) {
    sqlite3_file* real = F(file)->real;
    return real->pMethods->xFileControl(real, op, arg);
  }
  static int SectorSize(sqlite3_file* file) {
    sqlite3_file* real = F(file)->real;
    return real->pMethods->xSectorSize(real);
  }
  static int DeviceCharacteristics(sqlite3_file* file) {
    sqlite3_file* real = F(file)->real;
    return real->pMethods->xDeviceCharacteristics(real);
  }
  static int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
    sqlite3_file* real = F(file)->real;
    return real->pMethods->xShmMap(real, region, size, extend, out);
  }
  static int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
    sqlite3_file* real = F(file)->real;
    return real->pMethods->xShmLock(real, offset, n, flags);
  }
  static void ShmBarrier(sqlite3_file* file) {
    sqlite3_file* real = F(file)->real;
    real->pMethods->xShmBarrier(real);
  }
  static int ShmUnmap(sqlite3_file* file, int delete_flag) {
    sqlite3_file* real = F(file)->real;
    return real->pMethods->xShmUnmap(real, delete_flag);
  }
  // No memory-mapped reads: every read goes through xRead (mmap would bypass nothing we
  // track, but keeps the model simple).
  static int Fetch(sqlite3_file*, sqlite3_int64, int, void** out) {
    *out = nullptr;
    return SQLITE_OK;
  }
  static int Unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

  static constexpr sqlite3_io_methods kMethods = {3,
                                                  &Close,
                                                  &Read,
                                                  &Write,
                                                  &Truncate,
                                                  &Sync,
                                                  &FileSize,
                                                  &Lock,
                                                  &Unlock,
                                                  &CheckReservedLock,
                                                  &FileControl,
                                                  &SectorSize,
                                                  &DeviceCharacteristics,
                                                  &ShmMap,
                                                  &ShmLock,
                                                  &ShmBarrier,
                                                  &ShmUnmap,
                                                  &Fetch,
                                                  &Unfetch};

  sqlite3_vfs* base_ = nullptr;
  sqlite3_vfs vfs_{};
  mutable std::mutex mu_;
  bool power_on_ = true;
  std::map<std::string, PathState> files_;
  Counters counters_;
};

}  // namespace machub::testing
