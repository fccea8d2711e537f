// Scratch memory for the fused LSTM: uninitialised buffers for per-call operands, and a pool that hands the
// large per-sequence buffers (gates, cell states, their gradients) back out across calls as tensors.
// Not here: what goes in them (lstm_matmul.h packs operands into Scratch; lstm_layer.h fills the pooled
// sequences). Read lstm_matmul.h next. Included once, by fused_lstm.cpp.
#pragma once

#include <torch/extension.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>

namespace {

using at::Tensor;

// An uninitialised buffer of n floats, for scratch space that is written before it is read (a std::vector
// would fill it with zeros first, which on the small layers is a visible share of a call).
using Scratch = std::unique_ptr<float[]>;
inline Scratch scratch(int64_t n) { return Scratch(new float[std::max<int64_t>(n, 1)]); }

// Reuse of the large per-sequence buffers (gates, cell states, their gradients) across calls. Fresh
// allocations of tens of megabytes come from the operating system as new pages, and faulting them in costs
// as much as a good share of the arithmetic; training asks for the same sizes batch after batch, so freed
// buffers are kept, by exact size, up to kPoolBytes in all, and handed out again.
class BufferPool {
 public:
  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        cached_ -= bytes;
        return p;
      }
    }
    void* p = nullptr;
    if (posix_memalign(&p, 64, std::max<size_t>(bytes, 64)) != 0) throw std::bad_alloc();
    return p;
  }
  void give(void* p, size_t bytes) {
    std::lock_guard<std::mutex> guard(mutex_);
    if (cached_ + bytes > kPoolBytes) {  // over the cap: let everything kept so far go
      for (auto& entry : free_) std::free(entry.second);
      free_.clear();
      cached_ = 0;
    }
    if (bytes > kPoolBytes) {
      std::free(p);
      return;
    }
    free_.emplace(bytes, p);
    cached_ += bytes;
  }

 private:
  static constexpr size_t kPoolBytes = size_t(512) << 20;
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;
};

BufferPool& pool() {
  static BufferPool* instance = new BufferPool();  // never destroyed: tensors may outlive static teardown
  return *instance;
}

// An uninitialised float32 tensor from the pool.
Tensor pooled(at::IntArrayRef sizes) {
  int64_t numel = 1;
  for (int64_t d : sizes) numel *= d;
  const size_t bytes = static_cast<size_t>(numel) * sizeof(float);
  void* p = pool().take(bytes);
  return at::from_blob(p, sizes, [bytes](void* q) { pool().give(q, bytes); }, at::TensorOptions().dtype(at::kFloat));
}

}  // namespace
