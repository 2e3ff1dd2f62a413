// parallelRows: the CPU references' threading. Rows are independent, so [0, rows) is cut into one
// contiguous range per hardware thread; small problems stay on the calling thread (thread start-up
// would cost more than the work). The body must not throw: references validate arguments first.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace moe::kernels {

// `elementsPerRow` estimates the work of one row; below ~64k elements in all, no threads.
template <typename Fn>
void parallelRows(int64_t rows, int64_t elementsPerRow, Fn&& body) {
  const int64_t hw = std::max(1u, std::thread::hardware_concurrency());
  const int64_t threads = std::min(rows, hw);
  if (threads <= 1 || rows * elementsPerRow < (int64_t{1} << 16)) {
    if (rows > 0) body(int64_t{0}, rows);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
  const int64_t per = (rows + threads - 1) / threads;
  for (int64_t i = 0; i < threads && i * per < rows; ++i)
    pool.emplace_back([&body, i, per, rows] { body(i * per, std::min(rows, (i + 1) * per)); });
  for (auto& t : pool) t.join();
}

}  // namespace moe::kernels
