#include "state/store.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include "state/drift.h"

namespace triage::state {
namespace {

// Element-wise int64 addition; the longer vector sets the length.
class add_operator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    if (value.size() % 8 != 0 || (existing && existing->size() % 8 != 0)) return false;
    const size_t n = std::max(value.size(), existing ? existing->size() : 0) / 8;
    new_value->assign(n * 8, '\0');
    for (size_t i = 0; i < n; ++i) {
      int64_t a = 0, b = 0;
      if (existing && i * 8 < existing->size()) std::memcpy(&a, existing->data() + i * 8, 8);
      if (i * 8 < value.size()) std::memcpy(&b, value.data() + i * 8, 8);
      const int64_t sum = static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
      std::memcpy(new_value->data() + i * 8, &sum, 8);
    }
    return true;
  }
  const char* Name() const override { return "triage.add_int64"; }
};

// Drops decisions whose quarter (the value's first field, "2026Q3") is
// before `oldest_kept`. Quarters sort as strings ("YYYYQn").
class retention_filter final : public rocksdb::CompactionFilter {
 public:
  explicit retention_filter(std::string oldest_kept) : oldest_kept_(std::move(oldest_kept)) {}
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*, bool*) const override {
    const std::string_view v(value.data(), value.size());
    const auto tab = v.find('\t');
    if (tab == std::string_view::npos) return false;  // not a decision: keep
    return v.substr(0, tab) < oldest_kept_;
  }
  const char* Name() const override { return "triage.decisions_retention"; }

 private:
  std::string oldest_kept_;
};

// One filter per compaction, with the cut-off of that moment: decisions of a
// quarter that ended more than `days` ago go, i.e. every quarter before the
// one holding now - days.
class retention_factory final : public rocksdb::CompactionFilterFactory {
 public:
  explicit retention_factory(int days) : days_(days) {}
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context&) override {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    return std::make_unique<retention_filter>(quarter_of(now_ms - int64_t{days_} * 86400000));
  }
  const char* Name() const override { return "triage.decisions_retention"; }

 private:
  int days_;
};

error from_status(const rocksdb::Status& s, const std::string& what) {
  const auto code = s.IsCorruption() ? errc::corrupt : errc::io;
  return make_error(code, what + ": " + s.ToString());
}

}  // namespace

std::string_view family_name(family f) {
  switch (f) {
    case family::counters: return "counters";
    case family::histograms: return "histograms";
    case family::windows: return "windows";
    case family::drift: return "drift";
    case family::accuracy: return "accuracy";
    case family::decisions: return "decisions";
    case family::examples: return "examples";
    case family::meta: return "meta";
  }
  return "unknown";
}

std::optional<family> family_by_name(std::string_view name) {
  for (auto f : all_families) {
    if (family_name(f) == name) return f;
  }
  return std::nullopt;
}

bool is_additive(family f) {
  return f == family::counters || f == family::histograms || f == family::windows ||
         f == family::drift || f == family::accuracy;
}

std::string encode_counts(const counts& c) {
  std::string out(c.size() * 8, '\0');
  // The targets are little-endian (x86-64, aarch64); memcpy keeps it simple.
  if (!c.empty()) std::memcpy(out.data(), c.data(), out.size());
  return out;
}

result<counts> decode_counts(std::string_view bytes) {
  if (bytes.size() % 8 != 0) {
    return make_error(errc::corrupt, "counts value of " + std::to_string(bytes.size()) +
                                         " bytes is not a multiple of 8");
  }
  counts c(bytes.size() / 8);
  if (!c.empty()) std::memcpy(c.data(), bytes.data(), bytes.size());
  return c;
}

std::string partition_prefix(int32_t partition) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05d|", partition);
  return buf;
}

std::string applied_key(int32_t partition) { return partition_prefix(partition) + "applied"; }

void write_set::add(family f, std::string key, const counts& delta) {
  ops.push_back({kind::add, f, std::move(key), encode_counts(delta)});
}
void write_set::put(family f, std::string key, std::string value) {
  ops.push_back({kind::put, f, std::move(key), std::move(value)});
}
void write_set::erase(family f, std::string key) {
  ops.push_back({kind::erase, f, std::move(key), {}});
}

struct store::impl {
  std::string path;
  store_options opts;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // indexed by family
  // The memory budget: the block cache, which the memtables are charged to.
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers;

  rocksdb::ColumnFamilyHandle* cf(family f) const { return handles[static_cast<size_t>(f)]; }
  std::string where(family f, std::string_view key) const {
    return path + " [" + std::string(family_name(f)) + "] '" + std::string(key) + "'";
  }

  void close() {
    if (!db) return;
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    handles.clear();
    db->Close();
    db.reset();
  }
};

store::store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
store::~store() { close(); }
void store::close() {
  if (impl_) impl_->close();
}
const std::string& store::path() const { return impl_->path; }

result<std::unique_ptr<store>> store::open(const std::string& dir, const store_options& opts) {
  if (opts.memory_budget_mb < 8 || opts.memory_budget_mb > 65536) {
    return make_error(errc::invalid_argument, dir + ": memory_budget_mb " + std::to_string(opts.memory_budget_mb) +
                                                  " is out of bounds (8..65536 MB)");
  }
  if (opts.decisions_retention_days < 0 || opts.decisions_retention_days > 36500) {
    return make_error(errc::invalid_argument, dir + ": decisions_retention_days " +
                                                  std::to_string(opts.decisions_retention_days) +
                                                  " is out of bounds (0..36500)");
  }
  auto p = std::make_unique<impl>();
  p->path = dir;
  p->opts = opts;
  std::error_code ec;
  if (opts.create_if_missing && !opts.read_only) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error(errc::io, dir + ": cannot create the state directory (" + ec.message() + ")");
  }
  rocksdb::DBOptions dbo;
  dbo.create_if_missing = opts.create_if_missing && !opts.read_only;
  dbo.create_missing_column_families = !opts.read_only;
  dbo.paranoid_checks = true;
  dbo.max_open_files = 256;
  dbo.keep_log_file_num = 4;
  // Every family flushes together, so a store without a WAL reopens at one
  // consistent point (its meta applied offsets included).
  dbo.atomic_flush = true;
  // The memory budget (store_options::memory_budget_mb): one block cache of
  // the budget; the memtables are charged to it and flushed past half of it.
  const size_t budget = size_t(opts.memory_budget_mb) << 20;
  p->cache = rocksdb::NewLRUCache(budget);
  p->write_buffers = std::make_shared<rocksdb::WriteBufferManager>(budget / 2, p->cache);
  dbo.write_buffer_manager = p->write_buffers;
  auto merge = std::make_shared<add_operator>();
  // share: the family's write buffer as a fraction 1/share of the budget.
  auto family_options = [&](int share, bool point_lookups) {
    rocksdb::ColumnFamilyOptions o;
    o.write_buffer_size = std::max<size_t>(budget / size_t(share), 256 << 10);
    o.max_write_buffer_number = 2;
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = p->cache;
    t.cache_index_and_filter_blocks = true;
    t.pin_l0_filter_and_index_blocks_in_cache = true;
    if (point_lookups) t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    return o;
  };
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, family_options(64, false));
  for (auto f : all_families) {
    // decisions: one record per ticket, read by ticket id (corrections);
    // examples: one per escalated or low-confidence ticket; the others hold
    // a bounded set of keys.
    rocksdb::ColumnFamilyOptions o = f == family::decisions  ? family_options(8, true)
                                     : f == family::examples ? family_options(16, false)
                                                             : family_options(32, false);
    if (is_additive(f)) o.merge_operator = merge;
    if (f == family::decisions && opts.decisions_retention_days > 0) {
      o.compaction_filter_factory = std::make_shared<retention_factory>(opts.decisions_retention_days);
    }
    cfs.emplace_back(std::string(family_name(f)), o);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (opts.read_only) {
    if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT")) {
      return make_error(errc::io, dir + ": no state store here (no CURRENT file)");
    }
    s = rocksdb::DB::OpenForReadOnly(dbo, dir, cfs, &handles, &raw);
  } else {
    s = rocksdb::DB::Open(dbo, dir, cfs, &handles, &raw);
  }
  if (!s.ok()) return from_status(s, dir + ": cannot open the state store");
  p->db.reset(raw);
  // handles[0] is the default family, which the store does not use.
  p->db->DestroyColumnFamilyHandle(handles[0]);
  p->handles.assign(handles.begin() + 1, handles.end());
  return std::unique_ptr<store>(new store(std::move(p)));
}

result<void> store::write(const write_set& w) {
  rocksdb::WriteBatch batch;
  for (const auto& op : w.ops) {
    rocksdb::Status s;
    switch (op.k) {
      case write_set::kind::add:
        if (!is_additive(op.f)) {
          return make_error(errc::invalid_argument,
                            impl_->where(op.f, op.key) + ": add on a family that is not additive");
        }
        s = batch.Merge(impl_->cf(op.f), op.key, op.value);
        break;
      case write_set::kind::put: s = batch.Put(impl_->cf(op.f), op.key, op.value); break;
      case write_set::kind::erase: s = batch.Delete(impl_->cf(op.f), op.key); break;
    }
    if (!s.ok()) return from_status(s, impl_->where(op.f, op.key));
  }
  rocksdb::WriteOptions wo;
  wo.sync = impl_->opts.sync;
  wo.disableWAL = impl_->opts.no_wal && !impl_->opts.sync;
  if (auto s = impl_->db->Write(wo, &batch); !s.ok()) return from_status(s, impl_->path + ": write");
  return success();
}

result<std::optional<std::string>> store::get(family f, std::string_view key) const {
  std::string value;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(f), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return from_status(s, impl_->where(f, key));
  return std::optional<std::string>(std::move(value));
}

result<counts> store::get_counts(family f, std::string_view key) const {
  auto v = get(f, key);
  if (!v) return v.error();
  if (!v.value()) return counts{};
  auto c = decode_counts(*v.value());
  if (!c) return make_error(errc::corrupt, impl_->where(f, key) + ": " + c.error().message);
  return c;
}

result<void> store::scan(family f, std::string_view prefix,
                         const std::function<bool(std::string_view, std::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(f)));
  const rocksdb::Slice p(prefix.data(), prefix.size());
  for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
    if (!fn(std::string_view(it->key().data(), it->key().size()),
            std::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  if (!it->status().ok()) return from_status(it->status(), impl_->path + " [" + std::string(family_name(f)) + "]: scan");
  return success();
}

result<void> store::wipe_partition(int32_t partition) {
  const std::string from = partition_prefix(partition);
  std::string to = from;
  to.back() = '|' + 1;  // "00003}" sorts after every "00003|..." key
  rocksdb::WriteBatch batch;
  for (auto f : all_families) {
    if (auto s = batch.DeleteRange(impl_->cf(f), from, to); !s.ok()) return from_status(s, impl_->path);
  }
  // The corrections offsets live under "corrections|<p>" and stay: they
  // belong to the corrections consumer, not to the partition's state.
  rocksdb::WriteOptions wo;
  wo.sync = impl_->opts.sync;
  if (auto s = impl_->db->Write(wo, &batch); !s.ok()) {
    return from_status(s, impl_->path + ": wipe partition " + std::to_string(partition));
  }
  return success();
}

result<memory_use> store::memory() const {
  memory_use m;
  uint64_t v = 0;
  if (!impl_->db->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &v)) {
    return make_error(errc::io, impl_->path + ": no property " + rocksdb::DB::Properties::kCurSizeAllMemTables);
  }
  m.memtables = v;
  if (!impl_->db->GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimateTableReadersMem, &v)) {
    return make_error(errc::io, impl_->path + ": no property " + rocksdb::DB::Properties::kEstimateTableReadersMem);
  }
  m.table_readers = v;
  const uint64_t used = impl_->cache->GetUsage();
  const uint64_t reserved = impl_->write_buffers->dummy_entries_in_cache_usage();
  m.block_cache = used > reserved ? used - reserved : 0;
  return m;
}

uint64_t store::memory_budget_bytes() const { return uint64_t(impl_->opts.memory_budget_mb) << 20; }

result<void> store::compact() {
  rocksdb::CompactRangeOptions o;
  o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto f : all_families) {
    if (auto s = impl_->db->CompactRange(o, impl_->cf(f), nullptr, nullptr); !s.ok()) {
      return from_status(s, impl_->path + " [" + std::string(family_name(f)) + "]: compact");
    }
  }
  return success();
}

result<std::optional<int64_t>> store::applied_offset(int32_t partition) const {
  auto v = get(family::meta, applied_key(partition));
  if (!v) return v.error();
  if (!v.value()) return std::optional<int64_t>();
  auto c = decode_counts(*v.value());
  if (!c || c.value().size() != 1) {
    return make_error(errc::corrupt, impl_->where(family::meta, applied_key(partition)) +
                                         ": expected one int64");
  }
  return std::optional<int64_t>(c.value()[0]);
}

result<std::vector<int32_t>> store::partitions() const {
  std::vector<int32_t> out;
  auto ok = scan(family::meta, "", [&](std::string_view key, std::string_view) {
    if (key.size() > 6 && key[5] == '|' && key.substr(6) == "applied") {
      out.push_back(std::stoi(std::string(key.substr(0, 5))));
    }
    return true;
  });
  if (!ok) return ok.error();
  return out;
}

}  // namespace triage::state
