// bench_allreduce: the replica group's all-reduce (float32 sum, in place) through the project's own
// Communicator, over a sweep of message sizes, in the style of nccl-tests' all_reduce_perf.
//
//   mpiexec -n N bench_allreduce [--backend mpi|nccl] [--min-bytes 4] [--max-bytes 64M] [--factor 4]
//                                [--iters 20] [--warmup 5]
//
// Per size: bytes, float count, time per all-reduce (us; the slowest rank's mean over --iters
// back-to-back calls, as nccl-tests), algbw = bytes / time and busbw = algbw * 2(n-1)/n (GB/s,
// 1e9 bytes; nccl-tests' PERFORMANCE.md: busbw is what a ring moves per link, comparable across
// rank counts); then the best single call (each call timed alone after a barrier, slowest rank)
// and its busbw -- on a shared machine the closer figure for an idle one; and #wrong: before timing,
// each rank fills its buffer with values whose sum is an exact float (small integers), all-reduces
// once and counts the elements that differ from the known sum, summed over ranks. Any wrong value
// makes the exit status 1. Sizes accept K, M, G suffixes (powers of 1024).
//
// Backends: mpi -- MpiCommunicator on host memory; nccl -- NcclCommunicator on device memory (needs a
// build with NCCL and one CUDA device per rank on each node: otherwise a clear error, exit status 1).
// Results and the commands that produced them: benchmarks/RESULTS.md ("All-reduce").
#include <mpi.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "common/error.h"
#include "common/version.h"

#if MOE_USE_NCCL
#include "comm/nccl_communicator.h"
#endif

namespace {

struct Options {
  std::string backend = "mpi";
  int64_t minBytes = 4, maxBytes = int64_t{64} << 20;
  double factor = 4;
  int iters = 20, warmup = 5;
};

constexpr const char* kUsage =
    "usage: bench_allreduce [--backend mpi|nccl] [--min-bytes N] [--max-bytes N] [--factor F] [--iters N] "
    "[--warmup N]\n  sizes in bytes, with an optional K, M or G suffix (powers of 1024)";

int64_t parseBytes(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  const std::string suffix = end ? end : "";
  double scale = 1;
  if (suffix == "K" || suffix == "k") scale = 1024.0;
  else if (suffix == "M" || suffix == "m") scale = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "g") scale = 1024.0 * 1024 * 1024;
  else if (!suffix.empty() || end == s.c_str()) MOE_THROW("bad size '", s, "'\n", kUsage);
  MOE_CHECK(v > 0 && v * scale < 1e15, "bad size '", s, "'");
  return static_cast<int64_t>(v * scale);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      MOE_CHECK(i + 1 < argc, "missing value after ", a, "\n", kUsage);
      return argv[++i];
    };
    if (a == "--backend") o.backend = value();
    else if (a == "--min-bytes" || a == "-b") o.minBytes = parseBytes(value());
    else if (a == "--max-bytes" || a == "-e") o.maxBytes = parseBytes(value());
    else if (a == "--factor" || a == "-f") o.factor = std::atof(value().c_str());
    else if (a == "--iters" || a == "-n") o.iters = std::atoi(value().c_str());
    else if (a == "--warmup" || a == "-w") o.warmup = std::atoi(value().c_str());
    else if (a == "--help" || a == "-h") MOE_THROW(kUsage);
    else MOE_THROW("unknown option ", a, "\n", kUsage);
  }
  MOE_CHECK(o.backend == "mpi" || o.backend == "nccl", "unknown backend '", o.backend, "' (expected mpi or nccl)");
  MOE_CHECK(o.minBytes >= 4 && o.maxBytes >= o.minBytes, "need 4 <= --min-bytes <= --max-bytes");
  MOE_CHECK(o.factor > 1, "--factor must be > 1");
  MOE_CHECK(o.iters >= 1 && o.warmup >= 0, "need --iters >= 1 and --warmup >= 0");
  return o;
}

// Rank r's element i, and the exact sum over n ranks: integers below 2^24, so every partial sum in
// any reduction order is exact and the comparison can be ==.
float valueOf(int rank, size_t i) { return static_cast<float>(static_cast<int>(i % 1021) + 3 * rank); }
float sumOf(int n, size_t i) { return static_cast<float>(n * static_cast<int>(i % 1021) + 3 * n * (n - 1) / 2); }

int64_t countWrong(const std::vector<float>& got, int n) {
  int64_t wrong = 0;
  for (size_t i = 0; i < got.size(); ++i) wrong += got[i] != sumOf(n, i);
  return wrong;
}

// One backend's buffer: fill, all-reduce (enqueue), wait, read back.
class Target {
 public:
  virtual ~Target() = default;
  virtual moe::Communicator& comm() = 0;
  virtual void resize(size_t count) = 0;
  virtual void fill(const std::vector<float>& host) = 0;
  virtual void allreduce(size_t count) = 0;
  virtual void wait() = 0;  // the host waits until the enqueued all-reduces are done
  virtual void read(std::vector<float>& host) = 0;
};

class MpiTarget final : public Target {
 public:
  MpiTarget() : comm_(MPI_COMM_WORLD) {}
  moe::Communicator& comm() override { return comm_; }
  void resize(size_t count) override { buf_.assign(count, 0.f); }
  void fill(const std::vector<float>& host) override { buf_ = host; }
  void allreduce(size_t count) override { comm_.allreduceSum(buf_.data(), count); }
  void wait() override {}
  void read(std::vector<float>& host) override { host = buf_; }

 private:
  moe::MpiCommunicator comm_;
  std::vector<float> buf_;
};

#if MOE_USE_NCCL
class NcclTarget final : public Target {
 public:
  explicit NcclTarget(const moe::MpiSession& session) : comm_(MPI_COMM_WORLD, session) {
    comm_.setComputeStream(stream_.get());
  }
  moe::Communicator& comm() override { return comm_; }
  void resize(size_t count) override {
    if (buf_.size() < count) buf_ = moe::DeviceBuffer<float>(count);
  }
  void fill(const std::vector<float>& host) override { buf_.upload(host.data(), host.size()); }
  void allreduce(size_t count) override { comm_.allreduceSum(buf_.get(), count); }
  void wait() override { comm_.waitStream(stream_.get()); }
  void read(std::vector<float>& host) override { buf_.download(host.data(), host.size()); }

 private:
  moe::NcclCommunicator comm_;
  moe::CudaStream stream_;  // the "compute" stream the collectives are ordered on
  moe::DeviceBuffer<float> buf_;
};
#endif

std::unique_ptr<Target> makeTarget(const std::string& backend, const moe::MpiSession& mpi) {
  if (backend == "mpi") return std::make_unique<MpiTarget>();
#if MOE_USE_NCCL
  // Every rank must reach the same verdict before the NCCL bootstrap, or one would wait alone.
  const int devices = moe::cudaDeviceCountOrZero();
  int enough = devices >= mpi.localSize() ? 1 : 0;
  MOE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &enough, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (enough == 0 && devices >= mpi.localSize())
    MOE_THROW("--backend nccl needs one CUDA device per rank: another node has fewer devices than ranks");
  MOE_CHECK(enough == 1, "--backend nccl needs one CUDA device per rank: ", mpi.localSize(),
            " rank(s) on this node (", mpi.host(), "), ", devices, " device(s) visible",
            devices == 0 ? " (use --backend mpi on a machine without a GPU)" : "");
  return std::make_unique<NcclTarget>(mpi);
#else
  MOE_THROW("--backend nccl: this build has no NCCL communicator (configure with CUDA and NCCL found, MOE_NCCL=ON)");
#endif
}

}  // namespace

int main(int argc, char** argv) {
  moe::MpiSession mpi(&argc, &argv);
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const moe::Error& e) {
    // Every rank parses the same arguments: every rank stops, rank 0 says why.
    if (mpi.rank() == 0) std::fprintf(stderr, "bench_allreduce: %s\n", e.what());
    return 2;
  }
  std::unique_ptr<Target> target;
  try {
    target = makeTarget(o.backend, mpi);
  } catch (const std::exception& e) {
    // The verdict (and the NCCL bootstrap's) is agreed by every rank: all stop cleanly, one says why.
    if (mpi.rank() == 0) std::fprintf(stderr, "bench_allreduce: %s\n", e.what());
    return 1;
  }
  try {
    moe::Communicator& comm = target->comm();
    const int n = comm.size(), me = comm.rank();
    int hosts = mpi.localRank() == 0 ? 1 : 0;
    MOE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &hosts, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));

    std::vector<int64_t> sizes;
    for (double b = static_cast<double>(o.minBytes); b <= static_cast<double>(o.maxBytes) * (1 + 1e-9); b *= o.factor) {
      const int64_t bytes = static_cast<int64_t>(b) / 4 * 4;
      if (sizes.empty() || sizes.back() != bytes) sizes.push_back(bytes);
    }
    target->resize(static_cast<size_t>(sizes.back() / 4));
    if (me == 0) {
      std::printf("# bench_allreduce: backend %s, %d ranks on %d host(s), float32 sum in place, %d iterations after "
                  "%d warm-up, time = slowest rank's mean\n",
                  comm.backend(), n, hosts, o.iters, o.warmup);
      std::printf("# %12s %12s %6s %6s %11s %11s %11s %11s %11s %8s\n", "size(B)", "count", "type", "redop",
                  "time(us)", "algbw(GB/s)", "busbw(GB/s)", "best(us)", "best busbw", "#wrong");
    }
    int64_t totalWrong = 0;
    double busSum = 0;
    std::vector<float> host;
    for (const int64_t bytes : sizes) {
      const size_t count = static_cast<size_t>(bytes / 4);
      // Validation first: known values, one all-reduce, every element compared with its exact sum.
      host.resize(count);
      for (size_t i = 0; i < count; ++i) host[i] = valueOf(me, i);
      target->fill(host);
      target->allreduce(count);
      target->wait();
      std::fill(host.begin(), host.end(), -1.f);
      target->read(host);
      int64_t wrong = countWrong(host, n);
      MOE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &wrong, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
      totalWrong += wrong;

      // Timing on zeros (in place, so values would otherwise grow by n per call).
      std::fill(host.begin(), host.end(), 0.f);
      target->fill(host);
      for (int i = 0; i < o.warmup; ++i) target->allreduce(count);
      target->wait();
      MOE_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
      const double t0 = MPI_Wtime();
      for (int i = 0; i < o.iters; ++i) target->allreduce(count);
      target->wait();
      double seconds = (MPI_Wtime() - t0) / o.iters;
      MOE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
      // Best: the same calls one at a time (a barrier before each, the host waiting for each), the
      // slowest rank's time per call, the fastest call. On a shared machine the mean includes every
      // time a rank was descheduled; the best is the closer figure for an idle one.
      std::vector<double> each(static_cast<size_t>(o.iters));
      for (double& t : each) {
        MOE_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
        const double start = MPI_Wtime();
        target->allreduce(count);
        target->wait();
        t = MPI_Wtime() - start;
      }
      MOE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, each.data(), o.iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
      const double best = *std::min_element(each.begin(), each.end());
      const double toBus = 2.0 * (n - 1) / n;
      const double algbw = static_cast<double>(bytes) / seconds / 1e9;
      const double busbw = algbw * toBus;
      busSum += busbw;
      if (me == 0)
        std::printf("  %12" PRId64 " %12zu %6s %6s %11.2f %11.3f %11.3f %11.2f %11.3f %8" PRId64 "\n", bytes, count,
                    "float", "sum", seconds * 1e6, algbw, busbw, best * 1e6, static_cast<double>(bytes) / best / 1e9 * toBus,
                    wrong);
      std::fflush(stdout);
    }
    if (me == 0) {
      std::printf("# wrong values: %" PRId64 " %s\n", totalWrong, totalWrong == 0 ? "OK" : "FAILED");
      std::printf("# average busbw: %.3f GB/s over %zu sizes\n", busSum / static_cast<double>(sizes.size()),
                  sizes.size());
    }
    return totalWrong == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    mpi.abortJob(e.what(), 1);
  }
}
