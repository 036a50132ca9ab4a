#pragma once
// The bridge between configuration (config.h) and the sync module (src/sync): builds a
// sync::SyncConfig from the [sync] keys, and the `machub sync` / `machub verify` commands.

#include <string>

#include "app/config.h"
#include "sync/service.h"

namespace machub::app {

// The [sync] keys as a SyncConfig. With no bucket and no folder, the embedded default is
// a local folder standing in for S3: <data_dir>/s3. sync.enabled=false gives an empty
// target (sync disabled; the backlog is still reported).
sync::SyncConfig MakeSyncConfig(const Config& config);

// `machub sync --once [--requeue-quarantined]`: uploads the backlog and exits; a progress
// bar on stderr when it is a terminal. Exit 0 done, 1 gave up (network), 2 not retryable.
int RunSyncOnce(const Config& config, bool requeue_quarantined, int64_t give_up_after_ms);

// `machub verify`: reads every object back and checks it (sync/verify.h). Prints the
// summary as JSON; exit 0 when clean, 1 on any gap, duplicate, break or mismatch.
int RunVerify(const Config& config);

}  // namespace machub::app
