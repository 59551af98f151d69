#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace reinit {

namespace {

// Workers sleep until a loop is posted, then take pieces from a shared counter; the posting
// thread takes pieces too and waits for the last one to finish.
class Pool {
 public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // Workers join a loop only while it is posted, and the loop is taken down only when every
  // worker that joined has left, so no worker ever runs a piece of a finished loop.
  void Run(size_t count, const std::function<void(size_t)>& task) {
    std::lock_guard<std::mutex> serial(run_mutex_);  // one loop at a time
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &task;
      count_ = count;
      next_.store(0);
      ++generation_;
    }
    wake_.notify_all();
    Take(task, count);
    std::unique_lock<std::mutex> lock(mutex_);
    task_ = nullptr;  // no worker joins from now on
    done_.wait(lock, [this] { return joined_ == 0; });
  }

  static thread_local bool inside;

 private:
  void Take(const std::function<void(size_t)>& task, size_t count) {
    inside = true;
    for (size_t i = next_.fetch_add(1); i < count; i = next_.fetch_add(1)) task(i);
    inside = false;
  }

  void Work() {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(size_t)>* task = nullptr;
      size_t count = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || (generation_ != seen && task_ != nullptr); });
        if (stop_) return;
        seen = generation_;
        task = task_;
        count = count_;
        ++joined_;
      }
      Take(*task, count);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--joined_ == 0) done_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex run_mutex_, mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(size_t)>* task_ = nullptr;
  size_t count_ = 0;
  std::atomic<size_t> next_{0};
  int joined_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

thread_local bool Pool::inside = false;

std::atomic<int> g_threads{0};
std::mutex g_pool_mutex;

int Resolve(int threads) {
  if (threads > 0) return threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

// Shared: a loop running on a pool keeps it alive while another thread (the Python module runs
// calls on several) asks for another thread count and replaces it.
std::shared_ptr<Pool> GetPool(int threads) {
  static std::shared_ptr<Pool> pool;
  static int pool_threads = 0;
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!pool || pool_threads != threads) {
    pool = std::make_shared<Pool>(threads - 1);
    pool_threads = threads;
  }
  return pool;
}

}  // namespace

void SetThreadCount(int threads) { g_threads.store(std::max(0, threads)); }

int ThreadCount() { return Resolve(g_threads.load()); }

void ParallelFor(size_t count, const std::function<void(size_t)>& task) {
  const int threads = ThreadCount();
  if (count <= 1 || threads <= 1 || Pool::inside) {
    for (size_t i = 0; i < count; ++i) task(i);
    return;
  }
  GetPool(threads)->Run(count, task);
}

}  // namespace reinit
