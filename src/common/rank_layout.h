// Which expert and replica group a rank serves.
//
// World W ranks, E experts, R = W / E replica groups. Rank r hosts expert r % E in group r / E;
// rank 0 also coordinates. The ranks of one group see the same batch and meet in collectives;
// groups work on different batches (data parallel).
#pragma once

#include <string>
#include <vector>

namespace moe {

struct RankLayout {
  int worldSize = 1;
  int rank = 0;
  int experts = 1;
  int groups = 1;     // R
  int expert = 0;     // r % E
  int group = 0;      // r / E
  int groupRank = 0;  // == expert
  bool isCoordinator() const { return rank == 0; }
  bool isGroupLeader() const { return groupRank == 0; }
  int leaderOf(int g) const { return g * experts; }
};

// Throws moe::Error with a clear message when W is not a positive multiple of E.
RankLayout makeRankLayout(int worldSize, int rank, int experts);

// The device a rank's expert runs on. "cuda" becomes cuda:(localRank % visibleDevices), so the
// ranks of a node spread over its GPUs (with one GPU visible per task, as Slurm's
// --gpus-per-task arranges, each rank gets its own as cuda:0); the NCCL communicator picks the
// same index. "cpu" and an explicit "cuda:N" are kept, and so is "cuda" when no device is visible
// (loading the expert then says why it cannot run there).
std::string rankDevice(const std::string& requested, int localRank, int visibleDevices);

// Where a replica group computes its mixture, from each group rank's "<host> <device>" (e.g.
// "node1 cuda:0", "node2 cpu"; gathered by the job, so every rank decides alike): on its GPUs (the
// device mixture over NCCL, docs/gpu.md) only when every rank's expert runs on cuda, no two share a
// GPU (NCCL needs one per rank: sharedGpuOf), `mixtureOn` is "auto" and the build has the device
// mixture (CUDA and NCCL); otherwise on the host over MPI. `why` says which.
struct MixturePlacement {
  bool device = false;
  std::string why;
};
MixturePlacement decideMixturePlacement(const std::vector<std::string>& hostDevices, const std::string& mixtureOn,
                                        bool deviceMixtureBuilt);

// Given each group rank's "<host> <device>" (e.g. "node1 cuda:0"), says which two ranks share a
// GPU ("ranks 0 and 2 of the group share cuda:0 on node1"), or "" when none do. CPU devices never
// count as shared.
std::string sharedGpuOf(const std::vector<std::string>& hostDevices);

}  // namespace moe
