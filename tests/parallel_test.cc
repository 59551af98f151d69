#include "parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace reinit {
namespace parallel_test {
namespace {

class ParallelTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { SetThreadCount(GetParam()); }
  void TearDown() override { SetThreadCount(0); }
};

TEST_P(ParallelTest, RunsEveryPieceExactlyOnce) {
  for (size_t count : {0u, 1u, 2u, 3u, 17u, 1000u}) {
    std::vector<std::atomic<int>> runs(count);
    ParallelFor(count, [&](size_t i) { runs[i].fetch_add(1); });
    for (size_t i = 0; i < count; ++i) EXPECT_EQ(runs[i].load(), 1) << count << " " << i;
  }
}

TEST_P(ParallelTest, NestedLoopsRunInline) {
  std::vector<std::atomic<int>> runs(8 * 8);
  ParallelFor(8,
              [&](size_t i) { ParallelFor(8, [&](size_t j) { runs[i * 8 + j].fetch_add(1); }); });
  for (auto& r : runs) EXPECT_EQ(r.load(), 1);
}

TEST_P(ParallelTest, ManyLoopsInARow) {
  // Workers that wake late must never run a piece of a loop that has already returned.
  for (int round = 0; round < 2000; ++round) {
    std::vector<int> out(5, 0);
    ParallelFor(out.size(), [&](size_t i) { out[i] = round + static_cast<int>(i); });
    for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], round + static_cast<int>(i));
  }
}

TEST(ParallelCount, ZeroMeansTheMachine) {
  SetThreadCount(3);
  EXPECT_EQ(ThreadCount(), 3);
  SetThreadCount(0);
  EXPECT_GE(ThreadCount(), 1);
}

INSTANTIATE_TEST_SUITE_P(Threads, ParallelTest, ::testing::Values(1, 2, 4, 7));

}  // namespace
}  // namespace parallel_test
}  // namespace reinit
