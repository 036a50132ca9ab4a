#pragma once
// The bridge between configuration (config.h) and the sync module (src/sync): builds a
// sync::SyncConfig from the [sync] keys, and the `machub sync` / `machub verify` commands.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app/config.h"
#include "cloud/dynamodb_client.h"
#include "journal/ledger.h"
#include "sync/day_totals.h"
#include "sync/dynamo_sink.h"
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

// The DynamoDB sink of a hub (sync.dynamodb.enabled), with what it owns. Its progress is
// the ledger's sink cursor "dynamodb", registered here (so Prune keeps what the sink has
// not written; create the wiring before the S3 uploader starts). Credentials as for S3 (explicit
// sync.* keys, else the default chain). Destroy after the sink's thread stopped (the destructor
// stops it).
struct DynamoWiring {
  std::unique_ptr<cloud::CredentialsProvider> credentials;
  std::unique_ptr<cloud::DynamoDbClient> client;
  std::unique_ptr<sync::DynamoSink> sink;
  std::unique_ptr<sync::DayTotals> day_totals;  // today's figures for the stores item
  std::atomic<bool> cancel{false};
  ~DynamoWiring();
};

// Null (and OK) when the sink is disabled. kInvalidArgument for bad configuration; the
// ledger's errors when the sink cannot be registered.
Result<std::unique_ptr<DynamoWiring>> MakeDynamoWiring(const Config& config,
                                                       journal::Ledger* ledger);

// Fills the stores item's extra attributes (docs/DYNAMODB.md, "Stores table"): the S3
// side's state and backlog scalars (s3_*, backlog_*), today's figures (today_*, from
// wiring->day_totals over `ledger`) and `alerts`, the number of conditions an operator
// must look at (quarantined S3 batches plus 1 for a DynamoDB integrity alert). Call before
// the sink starts; `s3` and `ledger` must outlive the sink's thread.
// `alerts` returns the codes of the hub's raised alerts (http::ApiHandler::RaisedAlertCodes);
// it must stay callable while the sink runs.
void AttachStoreAttributes(DynamoWiring* wiring, sync::SyncService* s3, journal::Ledger* ledger,
                           std::function<std::vector<std::string>()> alerts);

// `machub dynamodb create-tables`: creates the sales table (PK store_id S, SK seq N, GSI
// by_entry_id) and the stores table (PK store_id S), on-demand billing, and waits until
// both are ACTIVE. Existing tables are fine. Exit 0 done, 1 network, 2 other errors.
int RunDynamoCreateTables(const Config& config);

}  // namespace machub::app
