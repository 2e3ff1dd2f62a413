// The distributed evaluation job: `mpirun -np W moe-dist --models A B C ...`.
//
// Roles (design.md): rank 0 coordinates (data, scheduling, the results file) and also serves as
// the leader of replica group 0; the leader of each other group asks rank 0 for batches and
// broadcasts them to its group; every rank hosts one expert and takes part in its group's
// mixture all-reduce. Set-up errors (bad data, an existing output, a model that does not load)
// end every rank cleanly with the failing rank's message; an error in the middle of the work
// ends the whole job with MPI_Abort, so no rank is left waiting in a collective.
// Every rank measures its own costs (tokens, forward, tokenize, collective, wait and write
// seconds) and each group leader its batches' timings; at the end of the work loop rank 0
// gathers them (MPI_Gatherv) into the results file's groups `ranks` and `timing`.
#pragma once

#include "common/config.h"

namespace moe {

// Runs the job; returns the process exit status. `commandLine` is recorded in the results file.
int runJob(const RunConfig& cfg, int* argc, char*** argv);

}  // namespace moe
