// Which expert and replica group a rank serves.
//
// World W ranks, E experts, R = W / E replica groups. Rank r hosts expert r % E in group r / E;
// rank 0 also coordinates. The ranks of one group see the same batch and meet in collectives;
// groups work on different batches (data parallel).
#pragma once

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

}  // namespace moe
