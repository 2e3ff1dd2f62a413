#include "common/rank_layout.h"

#include <algorithm>

#include "common/error.h"

namespace moe {

RankLayout makeRankLayout(int worldSize, int rank, int experts) {
  MOE_CHECK(experts >= 1, "no models given: pass --models with at least one expert");
  MOE_CHECK(worldSize >= 1 && rank >= 0 && rank < worldSize, "invalid rank ", rank, " of world ", worldSize);
  MOE_CHECK(experts <= worldSize, experts, " experts need at least ", experts, " ranks (one per expert), but the job has ",
            worldSize, ": run with mpirun -np ", experts, " (or a multiple of it for replicas)");
  MOE_CHECK(worldSize % experts == 0, "the job has ", worldSize, " ranks, which is not a multiple of the ", experts,
            " experts: each replica group needs one rank per expert (use -np ", (worldSize / experts) * experts,
            " or ", (worldSize / experts + 1) * experts, ")");
  RankLayout l;
  l.worldSize = worldSize;
  l.rank = rank;
  l.experts = experts;
  l.groups = worldSize / experts;
  l.expert = rank % experts;
  l.group = rank / experts;
  l.groupRank = l.expert;
  return l;
}

std::string rankDevice(const std::string& requested, int localRank, int visibleDevices) {
  if (requested != "cuda" || visibleDevices <= 0) return requested;
  return "cuda:" + std::to_string((localRank < 0 ? 0 : localRank) % visibleDevices);
}

namespace {
// The device part of "<host> <device>" names a CUDA device.
bool onCuda(const std::string& hostDevice) {
  const size_t space = hostDevice.rfind(' ');
  return space != std::string::npos && hostDevice.compare(space + 1, 4, "cuda") == 0;
}
}  // namespace

MixturePlacement decideMixturePlacement(const std::vector<std::string>& hostDevices, const std::string& mixtureOn,
                                        bool deviceMixtureBuilt) {
  const auto onGpu = std::count_if(hostDevices.begin(), hostDevices.end(), onCuda);
  if (onGpu == 0) return {false, "the experts run on the CPU"};
  if (onGpu < static_cast<std::ptrdiff_t>(hostDevices.size()))
    return {false, "some of the group's experts run on the CPU"};
  if (mixtureOn == "host") return {false, "--mixture-on host"};
  if (!deviceMixtureBuilt) return {false, "this build has no device mixture (it needs CUDA and NCCL at build time)"};
  const std::string shared = sharedGpuOf(hostDevices);
  if (!shared.empty()) return {false, shared + " (NCCL needs a GPU per rank)"};
  return {true, "every expert of the group runs on its own GPU"};
}

std::string sharedGpuOf(const std::vector<std::string>& hostDevices) {
  for (size_t i = 0; i < hostDevices.size(); ++i) {
    const std::string& a = hostDevices[i];
    if (!onCuda(a)) continue;
    const size_t space = a.rfind(' ');
    for (size_t j = i + 1; j < hostDevices.size(); ++j)
      if (hostDevices[j] == a)
        return "ranks " + std::to_string(i) + " and " + std::to_string(j) + " of the group share " +
               a.substr(space + 1) + " on " + a.substr(0, space);
  }
  return "";
}

}  // namespace moe
