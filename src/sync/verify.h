#pragma once
// Verification of what a store holds, from the objects alone (`machub verify --bucket ...
// | --dir ...`): the promise that the chain "can be verified from the S3 objects alone".
//
// Every object under "<prefix>/sales/store=<store_id>/" is listed, read (HEAD for its
// metadata, GET for its bytes) and checked, in first-seq order (from the key names):
//   - the key's file name parses ("<store>-<first>-<last>.<jsonl|csv>.gz", our store), and
//     the date partition is the first sale's UTC date (received_at) — JSONL only;
//   - metadata sha256 equals SHA-256 of the bytes, and a plain (non-multipart) ETag equals
//     their MD5; first-seq / last-seq / prev-hash / first-hash / last-hash match the
//     content;
//   - the bytes gunzip and parse. JSONL: each sale's canonical bytes are rebuilt from its
//     JSON (core::DecodeSale of the request fields, then core::CanonicalSale), its record
//     hash recomputed (CanonicalRecord, ChainHash over the line's prev_hash) and compared
//     with the line's hash. A store event's line (type drawer_open, cash_in, cash_out,
//     drawer_close, z_report) gives its canonical bytes back by dropping the journal's
//     members (core::DecodeCanonicalEvent must accept them as exactly canonical), so its
//     amounts, reason, counts and a Z report's figures are covered by the same check.
//     CSV (which has no payment details): rows are grouped by seq and only coverage and
//     the hash/prev_hash links are checked;
//   - each z_report line's figures equal core::ComputeReport over the entries it covers
//     (first_seq..last_seq, decoded from the JSONL lines before it, in the currency of
//     its figures): a Z report is checked from the objects alone. Ranges the objects do
//     not cover completely (CSV, gaps, more than max_z_entries) are counted unchecked;
//   - across all objects: every seq from the first object's first seq to the highest one
//     exactly once (gaps = missing seqs, duplicates = seqs seen again), each sale's
//     prev_hash equal to the previous sale's hash (chain_breaks), and when the first seq
//     is 1, its prev_hash equal to core::GenesisHash(store_id).
// A problem in one object is counted and described (`problems`, the first 50) and the
// walk goes on. Memory: one object at a time.
//
// Errors: the store's (listing or reading failed: the verification is incomplete) —
// problems in the data are not errors but counts with ok() == false.
// Thread-safety: reentrant; the store must be usable from the calling thread.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cloud/object_store.h"
#include "core/status.h"

namespace machub::sync {

struct VerifyOptions {
  std::string store_id = "S001";
  std::string prefix;  // PRODUCT.md <prefix>, as the uploader used it
  // The store's history starts at this seq (1: from the genesis); 0 accepts any start.
  int64_t expected_first_seq = 1;
  size_t max_object_bytes = 64u << 20;  // larger objects are bad_objects, not read
  // Entries kept for recomputing the next Z report (about 1 KB each); a business day with
  // more entries leaves its Z report unchecked (z_reports_unchecked), not failed.
  size_t max_z_entries = 100'000;
  // Called after each object: (objects checked, objects listed).
  std::function<void(int64_t done, int64_t total)> progress;
};

struct VerifySummary {
  int64_t objects = 0;  // objects listed under the store's sales prefix
  int64_t sales = 0;    // entries read, of every type (the name predates store events)
  int64_t events = 0;   // of which store events (JSONL; CSV rows are not decoded)
  int64_t first_seq = 0;
  int64_t last_seq = 0;
  int64_t gaps = 0;                   // seqs missing between first_seq and last_seq
  int64_t duplicates = 0;             // seqs seen more than once
  int64_t chain_breaks = 0;           // prev_hash not equal to the previous sale's hash
  int64_t hash_mismatches = 0;        // recomputed hash, sha256/ETag or metadata that differ
  int64_t bad_objects = 0;            // unreadable, not gzip, unparsable, or an unexpected key
  int64_t z_reports_checked = 0;      // Z reports whose figures were recomputed
  int64_t z_reports_unchecked = 0;    // Z reports whose range the objects did not cover
  int64_t z_mismatches = 0;           // checked Z reports with other figures
  std::vector<std::string> problems;  // human-readable, the first 50

  bool ok() const {
    return gaps == 0 && duplicates == 0 && chain_breaks == 0 && hash_mismatches == 0 &&
           bad_objects == 0 && z_mismatches == 0;
  }
  // {"ok":..,"objects":..,"sales":..,"events":..,"first_seq":..,"last_seq":..,"gaps":..,
  //  "duplicates":..,"chain_breaks":..,"hash_mismatches":..,"bad_objects":..,
  //  "z_reports_checked":..,"z_reports_unchecked":..,"z_mismatches":..,"problems":[..]}
  std::string ToJson() const;
};

Result<VerifySummary> VerifyStore(cloud::ObjectStore& store, const VerifyOptions& options);

}  // namespace machub::sync
