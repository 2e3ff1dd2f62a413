#include "common/rank_layout.h"

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

}  // namespace moe
