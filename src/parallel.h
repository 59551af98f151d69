// Data-parallel loops on a small pool of worker threads, for drawing and writing weights.
//
// Byte-identical output for every thread count comes from the callers, not from the pool:
// they cut their work into pieces whose boundaries depend only on the data (a tensor's size, a
// fixed chunk length), never on ThreadCount(), and every piece is computed the same way on
// whichever thread runs it. The pool only decides who runs which piece.
#pragma once

#include <cstddef>
#include <functional>

namespace reinit {

// The number of threads ParallelFor uses, the caller's included; 0 = the machine's hardware
// concurrency. Set once, before work starts (--threads).
void SetThreadCount(int threads);
int ThreadCount();

// Runs task(i) for every i in [0, count), on up to ThreadCount() threads, and returns when all
// have finished. Pieces are taken in increasing order. A ParallelFor inside a task runs its
// pieces on the calling thread.
void ParallelFor(size_t count, const std::function<void(size_t)>& task);

}  // namespace reinit
