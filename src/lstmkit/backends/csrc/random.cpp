// Counter-based Bernoulli draws for the regularisers' masks (backends/masks.py, which writes the same function
// in torch operations and documents it): element i of a mask is `scale` when h(i) < threshold, else 0, with
//   h(i) = mix(mix(i ^ key0) ^ key1)
// in 32-bit unsigned arithmetic, mix a bijective integer mixer (three multiply-xorshift rounds). Each element
// depends only on its index and the two keys, so the loop is split over threads and vectorised freely and
// gives the same mask for any thread count, at a small fraction of torch.bernoulli's cost for masks the size
// of a stack's inter-layer ones.
#include "random.h"

#include <ATen/Parallel.h>

#include <cstdint>

namespace {

inline uint32_t mix(uint32_t x) {
  x ^= x >> 17;
  x *= 0xED5AD4BBu;
  x ^= x >> 11;
  x *= 0xAC4C1B51u;
  x ^= x >> 15;
  x *= 0x31848BABu;
  x ^= x >> 14;
  return x;
}

// Draws i0..i1-1 into o. A function of its own: GCC vectorised the loop when it stood alone, but not where
// it was written inside the lambda that at::parallel_for's OpenMP region calls (scalar there, and slower on
// two threads than the vector loop on one).
void draw_range(float* o, int64_t i0, int64_t i1, uint32_t k0, uint32_t k1, uint64_t threshold, float scale) {
#pragma omp simd
  for (int64_t i = i0; i < i1; ++i) {
    const uint32_t h = mix(mix(static_cast<uint32_t>(i) ^ k0) ^ k1);
    o[i] = static_cast<uint64_t>(h) < threshold ? scale : 0.f;
  }
}

}  // namespace

// n draws as a float32 tensor; threshold in [0, 2^32] (the probability of `scale` is threshold / 2^32),
// keys in [0, 2^32).
at::Tensor bernoulli_mask(int64_t n, int64_t threshold, double scale, int64_t key0, int64_t key1) {
  TORCH_CHECK(n >= 0 && n <= (int64_t{1} << 32), "bernoulli_mask: n out of range");
  TORCH_CHECK(threshold >= 0 && threshold <= (int64_t{1} << 32), "bernoulli_mask: threshold out of range");
  at::Tensor out = at::empty({n}, at::TensorOptions().dtype(at::kFloat));
  float* o = out.data_ptr<float>();
  const uint64_t thr = static_cast<uint64_t>(threshold);
  const uint32_t k0 = static_cast<uint32_t>(key0), k1 = static_cast<uint32_t>(key1);
  const float s = static_cast<float>(scale);
  at::parallel_for(0, n, 1 << 15, [&](int64_t i0, int64_t i1) { draw_range(o, i0, i1, k0, k1, thr, s); });
  return out;
}
