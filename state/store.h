// store.h: the worker's state in RocksDB, one column family per kind of
// statistic. Every key starts with the input partition it belongs to
// ("00003|..."), so a partition's state can be wiped and restored on its own
// when the partition moves between workers.
//
//   auto s = store::open("var/state/w1-0");
//   if (!s) return s.error();                   // names the path and what is wrong
//   write_set w;
//   w.add(family::counters, "00003|2026Q4|cards|2|routed", {1});   // merge: adds
//   w.put(family::decisions, "00003|T-17", "2026Q4\tcards\t2\t0.93\trouted");
//   auto ok = s.value()->write(w);               // atomic
//   auto n = s.value()->get_counts(family::counters, "00003|2026Q4|cards|2|routed");
//   auto m = s.value()->memory();                // memtables + block cache + table readers
//
// Additive families (counters, histograms, windows, drift, accuracy) hold
// vectors of int64 (little-endian, 8 bytes each) and a merge operator that
// adds element-wise, so an update never reads before it writes. The other
// families (decisions, examples, meta) hold plain values.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "state/errc.h"

namespace triage::state {

enum class family : uint8_t {
  counters,    // <p>|<quarter>|<category>|<urgency>|<outcome> -> [tickets]
  histograms,  // <p>|<quarter>|<category> -> confidence deciles [10]
  windows,     // <p>|<YYYY-MM-DDTHH> -> [tickets, escalated] (hourly buckets)
  drift,       // <p>|<quarter or "baseline">|cat|<category>, |conf, |len, |tok
  accuracy,    // <p>|<quarter>|<category> -> [corrections, agreed]
  decisions,   // <p>|<ticket id> -> decision (decisions.h)
  examples,    // <p>|<quarter>|<ticket id> -> retraining example (JSON)
  meta,        // <p>|applied -> next input offset; corrections|<p> -> next offset
};
inline constexpr family all_families[] = {family::counters, family::histograms, family::windows,
                                          family::drift,    family::accuracy,   family::decisions,
                                          family::examples, family::meta};

std::string_view family_name(family f);
std::optional<family> family_by_name(std::string_view name);
// Values are int64 vectors combined by the add merge operator.
bool is_additive(family f);

using counts = std::vector<int64_t>;
std::string encode_counts(const counts& c);
// Fails (corrupt) if the size is not a multiple of 8.
result<counts> decode_counts(std::string_view bytes);

// The key prefix of a partition: "00003|".
std::string partition_prefix(int32_t partition);

// A set of changes written atomically.
struct write_set {
  enum class kind { add, put, erase };
  struct op {
    kind k;
    family f;
    std::string key;
    std::string value;  // add: encoded counts; put: the value; erase: unused
  };
  std::vector<op> ops;

  void add(family f, std::string key, const counts& delta);
  void put(family f, std::string key, std::string value);
  void erase(family f, std::string key);
  bool empty() const { return ops.empty(); }
};

struct store_options {
  // Create the directory and the column families if missing. Default: true.
  bool create_if_missing = true;
  // Open read-only (the CLI beside a running worker). Default: false.
  bool read_only = false;
  // fsync each write. The changelog is the durable copy, so a lost tail is
  // restored from it. Default: false.
  bool sync = false;
  // Write without RocksDB's write-ahead log: a crash then loses what was not
  // flushed yet, consistently across column families (atomic flush), so the
  // applied offsets fall behind the committed ones and the worker restores
  // those partitions from the changelog. The worker's stores use it; the
  // corrections store does not (no changelog behind it). Default: false.
  bool no_wal = false;
  // Memory for the whole store, in MB (RocksDB's own accounting; see
  // store::memory()). One LRU block cache of this size holds data, index and
  // filter blocks, and the memtables are charged to it through a
  // WriteBufferManager that flushes once they pass half the budget; each
  // family's write buffer is a share of the budget (decisions 1/8, examples
  // 1/16, every other family 1/32, two per family at most). So the store
  // stays near the budget whatever it holds: blocks are evicted, memtables
  // flushed. open() refuses a value out of bounds. Default: 64.
  // Bounds: 8..65536.
  int memory_budget_mb = 64;
  // Decisions older than this are dropped when RocksDB compacts the
  // decisions family, so the per-ticket family stops growing on disk. The
  // age is the decision's quarter (its input record's timestamp): a decision
  // goes once its quarter ended more than this many days ago, so it is kept
  // between retention_days and retention_days + one quarter. A correction
  // for a dropped decision is treated as one for an unknown ticket. 0: keep
  // decisions forever. The worker's stores take it from
  // state.decisions_retention_days. Default: 0. Bounds: 0..36500.
  int decisions_retention_days = 0;
};

// RocksDB's memory of one store, in bytes (store::memory()).
struct memory_use {
  // Active and immutable memtables of every family
  // (rocksdb.cur-size-all-mem-tables).
  uint64_t memtables = 0;
  // Data, index and filter blocks in the block cache (the cache's usage less
  // the memtables' reservation in it).
  uint64_t block_cache = 0;
  // Table readers outside the cache (rocksdb.estimate-table-readers-mem).
  uint64_t table_readers = 0;
  uint64_t total() const { return memtables + block_cache + table_readers; }
};

class store {
 public:
  // Opens (or creates) the store in `dir`. A damaged store (CURRENT,
  // MANIFEST, SST files) is errc::corrupt with the path in the message.
  static result<std::unique_ptr<store>> open(const std::string& dir, const store_options& opts = {});
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  const std::string& path() const;

  result<void> write(const write_set& w);
  // The value, or nullopt if the key is absent.
  result<std::optional<std::string>> get(family f, std::string_view key) const;
  // An additive family's value; empty if absent.
  result<counts> get_counts(family f, std::string_view key) const;
  // Calls fn for each key with `prefix`, in key order; fn returns false to stop.
  result<void> scan(family f, std::string_view prefix,
                    const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  // Deletes every key of `partition` in every family.
  result<void> wipe_partition(int32_t partition);
  // The next input offset of `partition` the state has applied (meta
  // <p>|applied), or nullopt if the partition has no state.
  result<std::optional<int64_t>> applied_offset(int32_t partition) const;
  // Partitions with state (from the meta family).
  result<std::vector<int32_t>> partitions() const;

  // What the store holds in memory now (memory_use); io if RocksDB does not
  // report a property.
  result<memory_use> memory() const;
  // store_options::memory_budget_mb in bytes.
  uint64_t memory_budget_bytes() const;
  // Compacts every family now (applies the decisions retention); RocksDB
  // also compacts on its own as files accumulate.
  result<void> compact();

  // Closes the database; safe to call twice (the destructor calls it).
  void close();

 private:
  struct impl;
  explicit store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// meta keys.
std::string applied_key(int32_t partition);

}  // namespace triage::state
