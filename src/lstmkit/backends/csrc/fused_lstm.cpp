// The fused LSTM on the CPU: one layer in one direction, forward and backward over the whole sequence in
// one call each, and a one-step stack for stepwise inference.
//
// The equations are core/step.py's lstm_step. Per layer: per step, the recurrent product h_rec @ W_hh^T (by
// the register-blocked kernels below, in float32 or bfloat16), then one pass over memory for the gate maths
// (sigmoid and tanh from one exp each, vectorised by the compiler), the cell update, the optional layer norms
// and zoneout, and the padding mask. The input projection and the weight gradients are one matrix product
// each over all steps for larger layers, and run step by step inside the time loop for small ones (Path says
// which and why). Sequences are handed over batch first and worked on time-major. Shapes: T steps, B batch, I
// inputs, H units, G = 4H (gates i, f, g, o).

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include "optim.h"
#include "random.h"
#include <omp.h>
#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <cstring>
#include <type_traits>
#include <vector>

namespace {

using at::Tensor;

constexpr float kEps = 1e-5f;  // layer-norm epsilon, as core.step.LAYER_NORM_EPS

// exp(v) as 2^n * p(r) with |r| <= ln(2)/2 and a degree-6 polynomial (about 1 ulp); written so that the
// compiler turns a loop of calls into vector instructions (no library call, no branch).
inline float exp_approx(float v) {
  v = std::fmin(std::fmax(v, -87.0f), 88.0f);
  const float n = std::nearbyint(v * 1.44269504088896341f);
  const float r = (v - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t e = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, sizeof(scale));
  return p * scale;
}
inline float sigmoidf(float v) { return 1.0f / (1.0f + exp_approx(-v)); }
inline float tanhf_fast(float v) { return 2.0f / (1.0f + exp_approx(-2.0f * v)) - 1.0f; }

// The single-precision matrix product of the BLAS torch links, when it exports one.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc) __attribute__((weak));

// MKL's per-thread thread count (when torch was built with MKL): the one-step stack's products on a few rows
// are small, and splitting them across threads costs more than it gains, so they run on one thread.
extern "C" int MKL_Set_Num_Threads_Local(int nt) __attribute__((weak));

struct SingleThreadedBlas {
  int previous = 0;
  SingleThreadedBlas() {
    if (MKL_Set_Num_Threads_Local != nullptr) previous = MKL_Set_Num_Threads_Local(1);
  }
  ~SingleThreadedBlas() {
    if (MKL_Set_Num_Threads_Local != nullptr) MKL_Set_Num_Threads_Local(previous);
  }
};

// A register-blocked product for the per-step products: C (rows x n) = A (rows x k) @ Bm (k x n), or C += ...
// when accumulating. A is read through strides (its element (r, q) at a[r * ars + q * acs]), so one kernel
// serves both A @ Bm and A^T @ Bm (the weight gradients); Bm and C are row-major with row strides ldb and
// ldc, and n is a multiple of 16 (callers pad their matrices with zero columns, so there are no leftover
// columns). R rows times NV vectors of 16 columns are accumulated in registers over all of k; no packing.
// Timed alone on one core for the per-step products of the W1 and W5 models (300-650 units; 20-30 rows):
// about 100-115 GFLOP/s, against 48-81 for the BLAS on 10-30 rows, whose per-call set-up and packing do not
// pay off on so few rows. kSmallGemm bounds the weights for which every other product of a layer (the input
// projection, the weight gradients) runs with it too (Path).
constexpr int64_t kSmallGemm = 65536;
inline bool small_weights(int64_t G, int64_t K) { return G * K <= kSmallGemm; }
inline int64_t pad16(int64_t n) { return (n + 15) / 16 * 16; }
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));  // the same, at any float alignment

struct Strided {
  const float* a;
  int64_t ars, acs;  // A (r, q) = a[r * ars + q * acs]
};

template <int R, int NV, bool ACC>
inline void small_block(Strided A, int64_t k, const float* bm, int64_t ldb, float* c, int64_t ldc) {
  v16 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = ACC ? *reinterpret_cast<const v16u*>(c + r * ldc + 16 * v) : v16{};
  for (int64_t q = 0; q < k; ++q) {
    v16 b[NV];
    for (int v = 0; v < NV; ++v) b[v] = *reinterpret_cast<const v16u*>(bm + q * ldb + 16 * v);
    for (int r = 0; r < R; ++r) {
      const float s = A.a[r * A.ars + q * A.acs];
      for (int v = 0; v < NV; ++v) acc[r][v] += s * b[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) *reinterpret_cast<v16u*>(c + r * ldc + 16 * v) = acc[r][v];
}

template <int N>
using Int = std::integral_constant<int, N>;

// Calls f(r, j, Int<R>{}, Int<NV>{}) for every register block of a (rows x n) product: rows r..r+R-1 and
// columns j..j+16 NV-1, n a multiple of 16. Rows in blocks of at most 6 (24 accumulators and 4 loaded vectors
// fill the 32 registers; measured about 1.8x faster than blocks of 4 on the recurrent products), as even as
// the count allows: 15 rows as 5 + 5 + 5 rather than 6 + 6 + 3, since Bm is read once per block whatever its
// size and a short block is slow. Columns in blocks of 4 vectors, the last one shorter. With at most
// kColumnsOuter row blocks (the per-step products: a thread's 10-30 rows) the columns are the outer loop, so
// that each column block of Bm, fetched from L3 for the first row block, is in L2 for the others (W1's
// W_hh, 1.4 MB, does not fit a core's L2): 3% off a W1 training step. With more row blocks the rows are the
// outer loop within tiles of kTileCols columns of Bm, each in L2 while all the rows pass over it (large
// batches' per-step products: batch-256 inference of the W1 model took 0.944 of the time; tiled_gemm hands
// over one such tile per call already) and a block of rows stays in L1.
constexpr int64_t kColumnsOuter = 8, kTileCols = 256;
template <typename F>
void for_register_blocks(int64_t rows, int64_t n, const F& f) {
  // g(j, Int<NV>) for each block of columns j0..j1 - 1; g(r, Int<R>) for each block of rows
  auto column_blocks = [](int64_t j0, int64_t j1, const auto& g) {
    int64_t j = j0;
    for (; j + 64 <= j1; j += 64) g(j, Int<4>{});
    switch ((j1 - j) / 16) {
      case 3: g(j, Int<3>{}); break;
      case 2: g(j, Int<2>{}); break;
      case 1: g(j, Int<1>{}); break;
      default: break;
    }
  };
  const int64_t groups = (rows + 5) / 6;
  auto row_blocks = [&](const auto& g) {
    for (int64_t q = 0, r = 0; q < groups; ++q) {
      const int64_t r1 = rows * (q + 1) / groups;
      switch (r1 - r) {
        case 6: g(r, Int<6>{}); break;
        case 5: g(r, Int<5>{}); break;
        case 4: g(r, Int<4>{}); break;
        case 3: g(r, Int<3>{}); break;
        case 2: g(r, Int<2>{}); break;
        case 1: g(r, Int<1>{}); break;
        default: break;
      }
      r = r1;
    }
  };
  if (groups <= kColumnsOuter) {  // columns outside
    column_blocks(0, n, [&](int64_t j, auto NV) { row_blocks([&](int64_t r, auto R) { f(r, j, R, NV); }); });
    return;
  }
  for (int64_t j0 = 0; j0 < n; j0 += kTileCols) {  // rows outside, within each tile of columns
    row_blocks([&](int64_t r, auto R) {
      column_blocks(j0, std::min(n, j0 + kTileCols), [&](int64_t j, auto NV) { f(r, j, R, NV); });
    });
  }
}

template <bool ACC = false>
void small_gemm(int64_t rows, int64_t k, int64_t n, Strided A, const float* bm, int64_t ldb, float* c, int64_t ldc) {
  for_register_blocks(rows, n, [&](int64_t r, int64_t j, auto R, auto NV) {
    small_block<decltype(R)::value, decltype(NV)::value, ACC>({A.a + r * A.ars, A.ars, A.acs}, k, bm + j, ldb,
                                                              c + r * ldc + j, ldc);
  });
}

// m (rows x cols, float32, any strides) copied into out (row stride ld). Rows that lie contiguously are copied
// whole; otherwise (a transposed view) in tiles of 16 x 16, so that the matrix is read and written a cache
// line at a time (a plain loop over a large transposed matrix took milliseconds).
void copy_strided(const float* p, int64_t rows, int64_t cols, int64_t s0, int64_t s1, float* out, int64_t ld) {
  auto tiles = [&](int64_t t0, int64_t t1) {  // tiles of rows [16 t0, 16 t1)
    for (int64_t r0 = t0 * 16; r0 < std::min(rows, t1 * 16); r0 += 16) {
      const int64_t r1 = std::min(rows, r0 + 16);
      if (s1 == 1 || cols == 1) {
        for (int64_t r = r0; r < r1; ++r) std::memcpy(out + r * ld, p + r * s0, cols * sizeof(float));
        continue;
      }
      for (int64_t c0 = 0; c0 < cols; c0 += 16) {
        const int64_t c1 = std::min(cols, c0 + 16);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) out[r * ld + c] = p[r * s0 + c * s1];
      }
    }
  };
  const int64_t n = (rows + 15) / 16;
  if (small_weights(rows, cols)) {
    tiles(0, n);
  } else {
    at::parallel_for(0, n, 1, tiles);
  }
}

void copy_tiles(const Tensor& m, float* out, int64_t ld) {
  copy_strided(m.data_ptr<float>(), m.size(0), m.size(1), m.stride(0), m.stride(1), out, ld);
}

// An uninitialised buffer of n floats, for scratch space that is written before it is read (a std::vector
// would fill it with zeros first, which on the small layers is a visible share of a call).
using Scratch = std::unique_ptr<float[]>;
inline Scratch scratch(int64_t n) { return Scratch(new float[std::max<int64_t>(n, 1)]); }

// m copied into (rows x pad16(cols)) with zeros in the padding columns: the operand small_gemm wants. Plain
// buffers rather than tensors here and below: on the small layers a few microseconds of dispatch per temporary
// add up to a good share of a call.
Scratch padded(const Tensor& m) {
  const int64_t rows = m.size(0), cols = m.size(1), ld = pad16(cols);
  Scratch out = scratch(rows * ld);
  float* o = out.get();
  if (ld > cols) {
    for (int64_t r = 0; r < rows; ++r) std::memset(o + r * ld + cols, 0, (ld - cols) * sizeof(float));
  }
  copy_tiles(m, o, ld);
  return out;
}

// bfloat16 products: two bfloat16 numbers packed in one 32-bit word, the lower half first, and a product
// accumulated in float32 over pairs of terms (what AVX512-BF16's dot-product instruction computes).
// v rounded to the nearest bfloat16, ties to even, as its 16 bits; a NaN stays a NaN (rounding its bits
// could carry into the sign), so that a diverging run still shows it.
inline uint32_t bf16_bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof(u));
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded;
}

// m (k x n, float32, any strides) as the operand bf16_gemm wants: (ceil(k / 2) x pad16(n)) words, word
// (p, j) holding m(2p, j) and m(2p + 1, j) (zeros past k and n). In tiles of 16 columns, as padded.
std::vector<uint32_t> packed_bf16(const Tensor& m) {
  const int64_t k = m.size(0), n = m.size(1), k2 = (k + 1) / 2, ld = pad16(n), s0 = m.stride(0), s1 = m.stride(1);
  const float* p = m.data_ptr<float>();
  std::vector<uint32_t> out(k2 * ld, 0u);
  at::parallel_for(0, (n + 15) / 16, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t c0 = t0 * 16; c0 < std::min(n, t1 * 16); c0 += 16) {
      const int64_t c1 = std::min(n, c0 + 16);
      for (int64_t q = 0; q < k2; ++q) {
        const float* even = p + 2 * q * s0;
        for (int64_t c = c0; c < c1; ++c) {
          const uint32_t hi = 2 * q + 1 < k ? bf16_bits(even[s0 + c * s1]) : 0u;
          out[q * ld + c] = bf16_bits(even[c * s1]) | hi << 16;
        }
      }
    }
  });
  return out;
}

// Rows of a (rows x k, row stride lda) as bf16_gemm's left operand: (rows x ceil(k / 2)) words.
void pairs_bf16(const float* a, int64_t lda, int64_t rows, int64_t k, uint32_t* out) {
  const int64_t k2 = (k + 1) / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const float* ar = a + r * lda;
    uint32_t* o = out + r * k2;
#pragma omp simd
    for (int64_t q = 0; q < k / 2; ++q) o[q] = bf16_bits(ar[2 * q]) | bf16_bits(ar[2 * q + 1]) << 16;
    if (k % 2) o[k2 - 1] = bf16_bits(ar[k - 1]);
  }
}

typedef uint32_t w16 __attribute__((vector_size(64)));
typedef uint32_t w16u __attribute__((vector_size(64), aligned(4)));

// acc + a.lo * b.lo + a.hi * b.hi in every lane, for words of two bfloat16 numbers
inline v16 dot2(v16 acc, w16 a, w16 b) {
#if defined(__AVX512BF16__)
  return (v16)_mm512_dpbf16_ps((__m512)acc, (__m512bh)a, (__m512bh)b);
#else
  const w16 high = w16{} + 0xffff0000u;
  return acc + (v16)(a << 16) * (v16)(b << 16) + (v16)(a & high) * (v16)(b & high);
#endif
}

// C (rows x n) = A @ Bm in bfloat16 with float32 sums: A (rows x k2 words, from pairs_bf16), Bm
// (k2 x ldb words, from packed_bf16), n a multiple of 16. Blocked as small_gemm is (timed alone on one core
// on the W1 and W5 recurrent products: about 205-225 GFLOP/s, against 97-150 for at::mm in bfloat16).
template <int R, int NV>
inline void bf16_block(const uint32_t* a, int64_t k2, const uint32_t* bm, int64_t ldb, float* c, int64_t ldc) {
  v16 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = v16{};
  for (int64_t q = 0; q < k2; ++q) {
    w16 b[NV];
    for (int v = 0; v < NV; ++v) b[v] = *reinterpret_cast<const w16u*>(bm + q * ldb + 16 * v);
    for (int r = 0; r < R; ++r) {
      const w16 s = w16{} + a[r * k2 + q];
      for (int v = 0; v < NV; ++v) acc[r][v] = dot2(acc[r][v], s, b[v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) *reinterpret_cast<v16u*>(c + r * ldc + 16 * v) = acc[r][v];
}

void bf16_gemm(int64_t rows, int64_t k2, int64_t n, const uint32_t* a, const uint32_t* bm, float* c, int64_t ldc) {
  for_register_blocks(rows, n, [&](int64_t r, int64_t j, auto R, auto NV) {
    bf16_block<decltype(R)::value, decltype(NV)::value>(a + r * k2, k2, bm + j, n, c + r * ldc + j, ldc);
  });
}

// The sum over blocks of parts (blocks x rows x ld), transposed into a new (cols x rows) tensor: the weight
// gradients from the in-loop path's per-block accumulators of dW^T. The first block receives the sum.
Tensor sum_transposed(float* parts, int64_t blocks, int64_t rows, int64_t ld, int64_t cols) {
  const int64_t n = rows * ld;
  for (int64_t k = 1; k < blocks; ++k) {
    const float* q = parts + k * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) parts[i] += q[i];
  }
  Tensor out = at::empty({cols, rows}, at::TensorOptions().dtype(at::kFloat));
  copy_strided(parts, cols, rows, 1, ld, out.data_ptr<float>(), rows);
  return out;
}

// C (rows x n) = A @ W^T with W (n x k); or, when w_transposed is false, C = A @ W with W (k x n). A is
// (rows x k) with row stride lda; C is contiguous. Row-major. Runs on the calling thread.
void gemm_rows_strided(const float* a, int64_t lda, int64_t rows, int64_t k, const float* w, int64_t n,
                       bool w_transposed, float* c) {
  if (rows == 0) return;
  if (sgemm_ != nullptr) {  // the BLAS torch links (column-major): C^T = op(W) A^T
    const int m_ = static_cast<int>(n), n_ = static_cast<int>(rows), k_ = static_cast<int>(k);
    const int ldb = static_cast<int>(lda);
    const float one = 1.f, zero = 0.f;
    const int ldw = w_transposed ? k_ : m_;
    sgemm_(w_transposed ? "T" : "N", "N", &m_, &n_, &k_, &one, w, &ldw, a, &ldb, &zero, c, &m_);
    return;
  }
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  Tensor at_a = at::from_blob(const_cast<float*>(a), {rows, k}, {lda, 1}, opts);
  Tensor at_w = w_transposed ? at::from_blob(const_cast<float*>(w), {n, k}, opts).t()
                             : at::from_blob(const_cast<float*>(w), {k, n}, opts);
  Tensor at_c = at::from_blob(c, {rows, n}, opts);
  at::mm_out(at_c, at_a, at_w);
}

void gemm_rows(const float* a, int64_t rows, int64_t k, const float* w, int64_t n, bool w_transposed, float* c) {
  gemm_rows_strided(a, k, rows, k, w, n, w_transposed, c);
}

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

// The all-step products of the larger layers in float32 (the input projection, the weight gradients, dx).
// C (rows x n) = A (rows x k) @ Bm (k x n) on all threads with small_gemm's register blocks, n a multiple of
// 16: Bm is worked through a block of kTileK rows by kTileN columns (256 KB) at a time, which stays in a
// core's L2 cache while all of the thread's rows pass over it. The threads split the larger of the two
// operands, each reading its own half of it: A's rows when A is the larger, otherwise Bm's columns. On the
// W1 and W5 models' products this measured 1.05-1.3x the speed of torch's at::mm in the same runs (155-195
// GFLOP/s on the two cores), the most on the weight gradients.
constexpr int64_t kTileK = 256, kTileN = 256;

void tiled_gemm(int64_t rows, int64_t k, int64_t n, Strided A, const float* bm, int64_t ldb, float* c,
                int64_t ldc) {
  auto tiles = [&](int64_t r0, int64_t r1, int64_t j0, int64_t j1) {
    for (int64_t jp = j0; jp < j1; jp += kTileN) {
      const int64_t nj = std::min(j1, jp + kTileN) - jp;
      for (int64_t kb = 0; kb < k; kb += kTileK) {
        const int64_t kl = std::min(k, kb + kTileK) - kb;
        const Strided a{A.a + r0 * A.ars + kb * A.acs, A.ars, A.acs};
        float* cb = c + r0 * ldc + jp;
        if (kb == 0) {
          small_gemm<false>(r1 - r0, kl, nj, a, bm + kb * ldb + jp, ldb, cb, ldc);
        } else {
          small_gemm<true>(r1 - r0, kl, nj, a, bm + kb * ldb + jp, ldb, cb, ldc);
        }
      }
    }
  };
  if (rows >= n) {  // in groups of 6 rows, small_gemm's largest register block
    at::parallel_for(0, (rows + 5) / 6, 1, [&](int64_t g0, int64_t g1) {
      tiles(g0 * 6, std::min(rows, g1 * 6), 0, n);
    });
  } else {
    at::parallel_for(0, n / 16, 1, [&](int64_t v0, int64_t v1) { tiles(0, rows, v0 * 16, v1 * 16); });
  }
}

// a @ b in float32 by tiled_gemm, a (M x K) and b (K x N) any strides; a new (M x N) tensor from the pool. b
// is read in place when its rows are contiguous (else copied, as padded does), and its last N % 16 columns
// through a zero-padded copy of them.
Tensor mm_f32(const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1), n0 = N / 16 * 16;
  Tensor out = pooled({M, N});
  if (K == 0) return out.zero_();  // an empty sum (tiled_gemm writes nothing then)
  float* c = out.data_ptr<float>();
  const Strided A{a.data_ptr<float>(), a.stride(0), a.stride(1)};
  Scratch copy;
  const float* bm = b.data_ptr<float>();
  int64_t ldb = b.stride(0);
  if (b.stride(1) != 1) {
    copy = padded(b);
    bm = copy.get();
    ldb = pad16(N);
  }
  if (n0 > 0) tiled_gemm(M, K, n0, A, bm, ldb, c, N);
  if (n0 < N) {  // the last columns: (K x 16) of Bm, (M x 16) of C
    std::vector<float> tail_b(K * 16, 0.f), tail_c(M * 16);
    for (int64_t q = 0; q < K; ++q) std::memcpy(&tail_b[q * 16], bm + q * ldb + n0, (N - n0) * sizeof(float));
    tiled_gemm(M, K, 16, A, tail_b.data(), 16, tail_c.data(), 16);
    for (int64_t r = 0; r < M; ++r) std::memcpy(c + r * N + n0, &tail_c[r * 16], (N - n0) * sizeof(float));
  }
  return out;
}

// The gradient of a weight, d^T @ x for d (N x G) and x (N x K) over all steps: taken as (x^T @ d)^T, so that
// the long sequence is the inner dimension and d, the larger operand, is read in place; a new (G x K) tensor
// (the transpose copied by copy_tiles).
Tensor weight_grad(const Tensor& d, const Tensor& x) {
  const Tensor t = mm_f32(x.t(), d);  // (K x G)
  Tensor out = at::empty({t.size(1), t.size(0)}, at::TensorOptions().dtype(at::kFloat));
  copy_tiles(t.t(), out.data_ptr<float>(), t.size(0));
  return out;
}

// Everything optional about a layer: layer norms, masks, lengths. Null pointers mean "absent".
struct Options {
  const float* ln_hh = nullptr;    // (G) gain of LN(W_hh h)
  const float* ln_c_w = nullptr;   // (H) gain of LN(c)
  const float* ln_c_b = nullptr;   // (H) bias of LN(c)
  const float* rec_mask = nullptr; // (B, H) variational dropout mask on h_prev, already scaled
  const float* keep_c = nullptr;   // (T, B, H) zoneout masks (training)
  const float* keep_h = nullptr;   // (T, B, H)
  float keep_c_p = 0.f;            // zoneout keep probability used when there are no masks (evaluation)
  float keep_h_p = 0.f;
  const int64_t* lengths = nullptr; // (B) valid steps per sequence
};

const float* ptr_or_null(const c10::optional<Tensor>& t) {
  return (t.has_value() && t->defined()) ? t->data_ptr<float>() : nullptr;
}

Options make_options(const c10::optional<Tensor>& ln_hh, const c10::optional<Tensor>& ln_c_w,
                     const c10::optional<Tensor>& ln_c_b, const c10::optional<Tensor>& rec_mask,
                     const c10::optional<Tensor>& keep_c, const c10::optional<Tensor>& keep_h, double keep_c_p,
                     double keep_h_p, const c10::optional<Tensor>& lengths) {
  Options o;
  o.ln_hh = ptr_or_null(ln_hh);
  o.ln_c_w = ptr_or_null(ln_c_w);
  o.ln_c_b = ptr_or_null(ln_c_b);
  o.rec_mask = ptr_or_null(rec_mask);
  o.keep_c = ptr_or_null(keep_c);
  o.keep_h = ptr_or_null(keep_h);
  o.keep_c_p = static_cast<float>(keep_c_p);
  o.keep_h_p = static_cast<float>(keep_h_p);
  if (lengths.has_value() && lengths->defined()) o.lengths = lengths->data_ptr<int64_t>();
  return o;
}

// Normalises v (n) in place to zero mean, unit variance; returns 1 / std.
inline float normalise(float* v, int64_t n) {
  float mean = 0.f;
  for (int64_t j = 0; j < n; ++j) mean += v[j];
  mean /= n;
  float var = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    v[j] -= mean;
    var += v[j] * v[j];
  }
  const float rstd = 1.0f / std::sqrt(var / n + kEps);
  for (int64_t j = 0; j < n; ++j) v[j] *= rstd;
  return rstd;
}

// Gradient of y = gain * xhat (+ bias) with respect to the pre-normalised x, given dy (n), xhat (n) and
// rstd; writes dx (n) and accumulates the gain's gradient into dgain.
inline void normalise_backward(const float* dy, const float* xhat, const float* gain, float rstd, int64_t n,
                               float* dx, float* dgain) {
  float mean_d = 0.f, mean_dx = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    const float d = dy[j] * gain[j];
    mean_d += d;
    mean_dx += d * xhat[j];
    dgain[j] += dy[j] * xhat[j];
  }
  mean_d /= n;
  mean_dx /= n;
  for (int64_t j = 0; j < n; ++j) dx[j] = rstd * (dy[j] * gain[j] - mean_d - xhat[j] * mean_dx);
}

inline bool is_valid(const Options& o, int64_t t, int64_t b) { return !o.lengths || t < o.lengths[b]; }

// Sequences are independent, so the batch is split into one block of rows per thread, and each thread
// runs the whole time loop for its rows: no synchronisation per step. Small problems stay on one thread.
int64_t row_block_count(int64_t rows, int64_t work) {
  const int64_t threads = at::get_num_threads();
  return threads <= 1 || rows < 2 || work < 20000 ? 1 : std::min<int64_t>(threads, rows);
}

template <typename F>
void for_row_blocks(int64_t rows, int64_t work, const F& f) {
  const int64_t blocks = row_block_count(rows, work);
  if (blocks == 1) {
    f(0, rows, 0);
    return;
  }
  at::parallel_for(0, blocks, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) f(k * rows / blocks, (k + 1) * rows / blocks, k);
  });
}

}  // namespace

// The input projection of all steps, x2 (N, I) @ W_ih^T -> (N, G) in float32; in bfloat16 (then widened)
// when the caller trains under bf16 autocast.
Tensor project(const Tensor& x2, const Tensor& w_ih, bool bf16) {
  if (!bf16) return mm_f32(x2, w_ih.t());
  return at::mm(x2.to(at::kBFloat16), w_ih.to(at::kBFloat16).t()).to(at::kFloat);
}

// a @ b in float32 (mm_f32), or in bfloat16 with the result widened.
Tensor matmul(const Tensor& a, const Tensor& b, bool bf16) {
  if (!bf16) return mm_f32(a, b);
  return at::mm(a.to(at::kBFloat16), b.to(at::kBFloat16)).to(at::kFloat);
}

// The gradient of a weight over all steps, d^T @ x: weight_grad in float32, matmul's in bfloat16.
Tensor grad_of_weight(const Tensor& d, const Tensor& x, bool bf16) {
  return bf16 ? matmul(d.t(), x, true) : weight_grad(d, x);
}

// Which path a layer takes. Small layers (both weight matrices within kSmallGemm) run every product with
// small_gemm inside the time loop, the input projection and the weight gradients included, while each step's
// rows are in cache: for such skinny products the BLAS reaches a fraction of its speed (measured: 19 GFLOP/s
// for the 16-input projection of the IMDB model), and the full-sequence buffers it needs are never written.
// Larger layers project all steps at once and take the weight gradients as one matrix product each
// (tiled_gemm); under bf16 autocast those products and the recurrent one run in bfloat16. Small layers stay
// float32 then too: bfloat16 gained them nothing measurable (the W2-W4 rows of benchmarks/README.md), and
// the in-loop path is faster.
// A forward that keeps nothing for a backward (inference) in float32 with at least kInferenceRows rows a
// thread projects the input step by step as well, whatever the layer's size: the all-step pre-activations
// (T x B x 4H floats, 61 MB for the W6-bulk batch) are then neither written out nor read back. Measured on
// the W1 model, against the all-step projection: 0.92-0.93 of the time at batch 32-1024 on two threads,
// 1.10 at batch 16 (8 rows a thread), where each step reads W_ih for too few rows.
struct Path {
  bool half;    // recurrent product in bfloat16 by bf16_gemm (else in float32 by small_gemm)
  bool inloop;  // input projection (and in the backward the weight gradients) per step, by small_gemm
};

constexpr int64_t kInferenceRows = 16;

// rows_per_thread: of a forward that keeps nothing for a backward, else 0
Path path_for(int64_t G, int64_t H, int64_t I, bool bf16, int64_t rows_per_thread = 0) {
  const bool small = small_weights(G, H);
  const bool inference = !bf16 && rows_per_thread >= kInferenceRows;
  return {bf16 && !small, (small && small_weights(G, I)) || inference};
}

// A batch-first (B, T, n) sequence as a time-major (T, B, n) contiguous one, so that each step's rows lie side
// by side (batch-first rows of one step lie a whole sequence apart, beyond what the hardware prefetchers
// follow, and reading them costs more than this copy). No copy for the batch-first views of time-major
// tensors that the layers hand each other.
Tensor time_major(const Tensor& x) { return x.transpose(0, 1).contiguous(); }

// A (B, T, n) sequence read one step's rows at a time: element (b, t, k) at at(b, t)[k]. In place when one
// step's rows lie within a page of each other (short sequences, or the time-major views the layers hand
// each other), which saves the copy; otherwise through a time-major copy, as above.
struct Rows {
  const float* p;
  int64_t sb, st;  // strides of b and t; unit stride within a row
  const float* at(int64_t b, int64_t t) const { return p + b * sb + t * st; }
};
Tensor step_rows(const Tensor& x) {  // (B, T, n), a view with unit stride in n
  const bool near = x.stride(2) == 1 && x.stride(0) * static_cast<int64_t>(sizeof(float)) <= 4096;
  return near ? x : time_major(x).transpose(0, 1);
}
Rows rows_of(const Tensor& x) { return {x.data_ptr<float>(), x.stride(0), x.stride(1)}; }

// Forward of one layer in one direction, input projection included.
//   x (B, T, I) batch first; h0, c0 (B, H); w_ih (G, I); w_hh (G, H); bias (G) = b_ih + b_hh,
//   or empty. Returns y_tm (T, B, H) (layer_forward: y (B, T, H), its batch-first view, as torch.nn.LSTM's
//   batch-first output is), and h_T, c_T (B, H); then what the backward needs (and the traces), time-major
//   so that each step's rows lie side by side in memory: y_tm (T, B, H); gates (T, B, G) activated i, f,
//   g, o; c_all (T, B, H) the carried cell state after each step; with LN(W_ih x) xhat_ih (T, B, G) and
//   rstd_ih (T, B); with LN(W_hh h) gh_hat (T, B, G) and rstd_hh (T, B); with LN(c) c_hat (T, B, H) and
//   rstd_c (T, B). Absent ones are empty. The backward rebuilds h_prev, c_prev and tanh(c) from y_tm, c_all
//   and the gates, so the forward writes 6H floats per row and step.
// The tensor operations around the loops (copies, allocations, stacking) run below autograd's dispatch
// (AutoDispatchBelowADInplaceOrView): inside an autograd node they need none of its bookkeeping, whose cost
// per operation added up to a good share of a call on small layers. Views handed to callers are made outside
// it, so that autograd tracks them (an in-place change of y must be caught before the backward reads y_tm).
std::vector<Tensor> layer_forward_tm(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                                     const Tensor& w_hh, const Tensor& bias, const c10::optional<Tensor>& ln_ih,
                                     const c10::optional<Tensor>& ln_hh, const c10::optional<Tensor>& ln_c_w,
                                     const c10::optional<Tensor>& ln_c_b, const c10::optional<Tensor>& rec_mask,
                                     const c10::optional<Tensor>& keep_c, const c10::optional<Tensor>& keep_h,
                                     double keep_c_p, double keep_h_p, const c10::optional<Tensor>& lengths,
                                     bool reverse, bool bf16, bool save) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;  // see the note above
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), G = w_hh.size(0), H = G / 4, Gp = pad16(G);
  const Options o = make_options(ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, keep_c_p, keep_h_p, lengths);
  const Path path = path_for(G, H, I, bf16, save ? 0 : B / row_block_count(B, T * B * G));  // as the loop splits
  const Tensor x_in = path.inloop ? step_rows(x) : time_major(x);  // (B, T, I) by rows, or (T, B, I)
  const float* g_ih = ptr_or_null(ln_ih);
  const auto f32 = x.options();
  const Tensor empty = at::empty({0}, f32);
  const float* bs = bias.numel() ? bias.data_ptr<float>() : nullptr;
  Tensor xhat_ih = g_ih ? pooled({T, B, G}) : empty;
  Tensor rstd_ih = g_ih ? at::empty({T, B}, f32) : empty;
  float* xh = g_ih ? xhat_ih.data_ptr<float>() : nullptr;
  float* rs = g_ih ? rstd_ih.data_ptr<float>() : nullptr;
  // a row of input pre-activations W_ih x_t, for step and row bt = t * B + b: LN, then the biases
  auto finish_input = [&](float* row, int64_t bt) {
    if (g_ih) {
      rs[bt] = normalise(row, G);
      std::memcpy(xh + bt * G, row, G * sizeof(float));
      for (int64_t j = 0; j < G; ++j) row[j] *= g_ih[j];
    }
    if (bs) {
#pragma omp simd
      for (int64_t j = 0; j < G; ++j) row[j] += bs[j];
    }
  };

  // without the in-loop path: the input pre-activations of all steps at once, (T, B, G)
  Tensor xproj = empty;
  if (!path.inloop) {
    xproj = project(x_in.view({T * B, I}), w_ih, bf16).view({T, B, G});
    float* xp = xproj.data_ptr<float>();
    if (g_ih || bs) {
      at::parallel_for(0, B * T, 256, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) finish_input(xp + r * G, r);
      });
    }
  }

  Tensor y_tm = pooled({T, B, H});
  Tensor gates = save ? pooled({T, B, G}) : empty;
  Tensor c_all = save ? pooled({T, B, H}) : empty;
  Tensor c_hat = o.ln_c_w ? pooled({T, B, H}) : empty;
  Tensor rstd_c = o.ln_c_w ? at::empty({T, B}, f32) : empty;
  Tensor gh_hat = o.ln_hh ? pooled({T, B, G}) : empty;
  Tensor rstd_hh = o.ln_hh ? at::empty({T, B}, f32) : empty;
  Tensor h = h0.clone(), c = c0.clone();  // the carried state, (B, H)
  const int64_t ldg = Gp;
  const Scratch gh = scratch(B * ldg);     // W_hh h_rec of one step, then the pre-activations
  std::vector<float> h_rec_buf(o.rec_mask ? B * H : 0);

  const Scratch w_t = path.half ? Scratch() : padded(w_hh.t());                             // (H, Gp)
  const std::vector<uint32_t> w_t_bf = path.half ? packed_bf16(w_hh.t()) : std::vector<uint32_t>();
  const Scratch w_ih_t = path.inloop ? padded(w_ih.t()) : Scratch();                        // (I, Gp)
  const Rows x_rows = path.inloop ? rows_of(x_in) : Rows{};
  const float* xp_all = path.inloop ? nullptr : xproj.data_ptr<float>();
  float* gp_all = save ? gates.data_ptr<float>() : nullptr;
  float* hp = h.data_ptr<float>();
  float* cp = c.data_ptr<float>();
  float* ghp = gh.get();
  float* hrecp = o.rec_mask ? h_rec_buf.data() : hp;
  float* yp_all = y_tm.data_ptr<float>();
  float* call_p = save ? c_all.data_ptr<float>() : nullptr;
  float* chat_all = o.ln_c_w ? c_hat.data_ptr<float>() : nullptr;
  float* rc_all = o.ln_c_w ? rstd_c.data_ptr<float>() : nullptr;
  float* ghh_all = o.ln_hh ? gh_hat.data_ptr<float>() : nullptr;
  float* rhh_all = o.ln_hh ? rstd_hh.data_ptr<float>() : nullptr;

  // zoneout keep values when there are no masks: the evaluation-time probability (0 without zoneout)
  const std::vector<float> keep_c_const(H, o.keep_c_p), keep_h_const(H, o.keep_h_p);

  for_row_blocks(B, T * B * G, [&](int64_t b0, int64_t b1, int64_t) {
    const int64_t rows = b1 - b0;
    std::vector<float> arg_buf(H);                              // LN(c_new) for tanh
    std::vector<float> xin_buf(path.inloop ? rows * Gp : 0);  // this step's input pre-activations
    std::vector<uint32_t> hrec_bf(path.half ? rows * ((H + 1) / 2) : 0);
    std::vector<float> row_buf(save ? 0 : G + H);  // one row's gates and new cell, when none are kept
    for (int64_t k = 0; k < T; ++k) {
      const int64_t t = reverse ? T - 1 - k : k;
      if (o.rec_mask) {
        for (int64_t b = b0; b < b1; ++b) {
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) hrecp[b * H + j] = hp[b * H + j] * o.rec_mask[b * H + j];
        }
      }
      if (path.half) {  // W_hh h_rec, rows b0..b1
        pairs_bf16(hrecp + b0 * H, H, rows, H, hrec_bf.data());
        bf16_gemm(rows, (H + 1) / 2, Gp, hrec_bf.data(), w_t_bf.data(), ghp + b0 * Gp, Gp);
      } else {
        small_gemm(rows, H, Gp, {hrecp + b0 * H, H, 1}, w_t.get(), Gp, ghp + b0 * Gp, Gp);
      }
      if (path.inloop) {  // W_ih x_t, rows b0..b1
        small_gemm(rows, I, Gp, {x_rows.at(b0, t), x_rows.sb, 1}, w_ih_t.get(), Gp, xin_buf.data(), Gp);
        if (g_ih || bs) {
          for (int64_t b = b0; b < b1; ++b) finish_input(xin_buf.data() + (b - b0) * Gp, t * B + b);
        }
      }
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t bt = t * B + b;
        float* pre = ghp + b * ldg;
        const float* xr = path.inloop ? xin_buf.data() + (b - b0) * Gp : xp_all + bt * G;
        float* gr = save ? gp_all + bt * G : row_buf.data();
        float* hr = hp + b * H;
        float* cr = cp + b * H;
        float* yr = yp_all + bt * H;
        float* ca = save ? call_p + bt * H : row_buf.data() + G;  // c_new, then the carried c
        if (!is_valid(o, t, b)) {     // padding: the state carries over, outputs and gates are 0
          std::memset(gr, 0, G * sizeof(float));
          std::memset(yr, 0, H * sizeof(float));
          std::memcpy(ca, cr, H * sizeof(float));
          continue;
        }
        if (o.ln_hh) {
          rhh_all[bt] = normalise(pre, G);
          float* saved = ghh_all + bt * G;
          for (int64_t j = 0; j < G; ++j) {
            saved[j] = pre[j];
            pre[j] *= o.ln_hh[j];
          }
        }
        const float* kc = o.keep_c ? o.keep_c + bt * H : keep_c_const.data();
        const float* kh = o.keep_h ? o.keep_h + bt * H : keep_h_const.data();
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // gates and the new cell, one pass
          const float i = sigmoidf(pre[j] + xr[j]);
          const float f = sigmoidf(pre[H + j] + xr[H + j]);
          const float g = tanhf_fast(pre[2 * H + j] + xr[2 * H + j]);
          const float og = sigmoidf(pre[3 * H + j] + xr[3 * H + j]);
          gr[j] = i;
          gr[H + j] = f;
          gr[2 * H + j] = g;
          gr[3 * H + j] = og;
          ca[j] = f * cr[j] + i * g;
        }
        const float* arg = ca;
        if (o.ln_c_w) {
          float* an = arg_buf.data();
          std::memcpy(an, ca, H * sizeof(float));
          rc_all[bt] = normalise(an, H);
          std::memcpy(chat_all + bt * H, an, H * sizeof(float));
          for (int64_t j = 0; j < H; ++j) an[j] = an[j] * o.ln_c_w[j] + o.ln_c_b[j];
          arg = an;
        }
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // h = o tanh(LN(c_new)), then zoneout mixes both with the old state
          const float h_new = gr[3 * H + j] * tanhf_fast(arg[j]);
          const float c_new = ca[j];
          const float h_out = kh[j] * hr[j] + (1.f - kh[j]) * h_new;
          const float c_out = kc[j] * cr[j] + (1.f - kc[j]) * c_new;
          hr[j] = h_out;
          yr[j] = h_out;
          cr[j] = c_out;
          ca[j] = c_out;
        }
      }
    }
  });
  return {y_tm, h, c, y_tm, gates, c_all, xhat_ih, rstd_ih, gh_hat, rstd_hh, c_hat, rstd_c};
}

std::vector<Tensor> layer_forward(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                                  const Tensor& w_hh, const Tensor& bias, const c10::optional<Tensor>& ln_ih,
                                  const c10::optional<Tensor>& ln_hh, const c10::optional<Tensor>& ln_c_w,
                                  const c10::optional<Tensor>& ln_c_b, const c10::optional<Tensor>& rec_mask,
                                  const c10::optional<Tensor>& keep_c, const c10::optional<Tensor>& keep_h,
                                  double keep_c_p, double keep_h_p, const c10::optional<Tensor>& lengths,
                                  bool reverse, bool bf16, bool save) {
  std::vector<Tensor> out = layer_forward_tm(x, h0, c0, w_ih, w_hh, bias, ln_ih, ln_hh, ln_c_w, ln_c_b, rec_mask,
                                             keep_c, keep_h, keep_c_p, keep_h_p, lengths, reverse, bf16, save);
  out[0] = out[0].transpose(0, 1);  // with autograd's view tracking: y shares y_tm's version counter
  return out;
}

// Backward of layer_forward: dy (B, T, H), dh_T, dc_T (B, H), the forward's inputs and saved
// tensors in; returns dx (B, T, I) (empty unless need_dx), dh0, dc0 (B, H), dW_ih (G, I), dW_hh (G, H),
// d bias (G), and the layer norms' gains' gradients (empty when absent): d ln_ih (G), d ln_hh (G),
// d ln_c_w, d ln_c_b (H).
std::vector<Tensor> layer_backward(const Tensor& dy, const Tensor& dh_T, const Tensor& dc_T, const Tensor& x,
                                   const Tensor& h0, const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh,
                                   const Tensor& y_tm, const Tensor& gates, const Tensor& c_all,
                                   const Tensor& xhat_ih, const Tensor& rstd_ih, const Tensor& gh_hat,
                                   const Tensor& rstd_hh, const Tensor& c_hat, const Tensor& rstd_c,
                                   const c10::optional<Tensor>& ln_ih, const c10::optional<Tensor>& ln_hh,
                                   const c10::optional<Tensor>& ln_c_w, const c10::optional<Tensor>& ln_c_b,
                                   const c10::optional<Tensor>& rec_mask, const c10::optional<Tensor>& keep_c,
                                   const c10::optional<Tensor>& keep_h, double keep_c_p, double keep_h_p,
                                   const c10::optional<Tensor>& lengths, bool reverse, bool bf16, bool need_dx) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;  // see the note before layer_forward_tm
  const int64_t B = x.size(0), T = x.size(1), I = x.size(2), G = w_hh.size(0), H = G / 4;
  const int64_t Gp = pad16(G), Hp = pad16(H), Ip = pad16(I);
  const Options o = make_options(ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, keep_c_p, keep_h_p, lengths);
  const Path path = path_for(G, H, I, bf16);  // as in the forward
  const bool inloop = path.inloop;
  const Tensor x_in = inloop ? step_rows(x) : time_major(x), dy_in = step_rows(dy);  // as in the forward
  const float* g_ih = ptr_or_null(ln_ih);
  const auto f32 = x.options();
  const Tensor empty = at::empty({0}, f32);
  // the full-sequence gradients the one-product path multiplies at the end
  Tensor dxproj = inloop ? empty : pooled({T, B, G});                              // d pre-activations
  Tensor dgh_all = inloop ? empty : o.ln_hh ? pooled({T, B, G}) : dxproj;          // d of the raw W_hh h_rec
  Tensor h_rec_all = inloop ? empty : pooled({T, B, H});                           // h_prev (masked), rebuilt
  Tensor dh = dh_T.clone(), dc = dc_T.clone();                                     // carried gradients of the state
  const int64_t ldh = Hp;
  const Scratch dh_rec = scratch(B * ldh);
  // per-block accumulators (summed at the end) of the layer norms' gradients, and of the weight gradients on
  // the in-loop path, transposed and padded: dW_hh^T (H, Gp), dW_ih^T (I, Gp), d bias (Gp)
  // (the weight gradients' are written at the first step each block takes, so they start uninitialised)
  const int64_t blocks = row_block_count(B, T * B * G);  // as for_row_blocks splits the rows below
  Tensor dln_hh_parts = o.ln_hh ? at::zeros({blocks, G}, f32) : empty;
  Tensor dln_cw_parts = o.ln_c_w ? at::zeros({blocks, H}, f32) : empty;
  Tensor dln_cb_parts = o.ln_c_w ? at::zeros({blocks, H}, f32) : empty;
  Tensor dln_ih_parts = inloop && g_ih ? at::zeros({blocks, G}, f32) : empty;
  Scratch dwhh_parts = scratch(inloop ? blocks * H * Gp : 0), dwih_parts = scratch(inloop ? blocks * I * Gp : 0);
  std::vector<float> dbias_parts(inloop ? blocks * Gp : 0, 0.f);
  Tensor dx_tm = inloop && need_dx ? at::empty({T, B, I}, f32) : empty;

  const Scratch w_pad = path.half ? Scratch() : padded(w_hh);                                 // (G, Hp)
  const std::vector<uint32_t> w_bf = path.half ? packed_bf16(w_hh) : std::vector<uint32_t>();
  const Scratch w_ih_pad = inloop && need_dx ? padded(w_ih) : Scratch();                        // (G, Ip)
  const Rows dy_rows = rows_of(dy_in), x_rows = inloop ? rows_of(x_in) : Rows{};
  const float* gp_all = gates.data_ptr<float>();
  const float* call_p = c_all.data_ptr<float>();
  const float* yp_all = y_tm.data_ptr<float>();
  const float* h0p = h0.data_ptr<float>();
  const float* c0p = c0.data_ptr<float>();
  float* dpre_all = inloop ? nullptr : dxproj.data_ptr<float>();
  float* dgh_all_p = inloop ? nullptr : dgh_all.data_ptr<float>();
  float* hrec_all = inloop ? nullptr : h_rec_all.data_ptr<float>();
  float* dhp = dh.data_ptr<float>();
  float* dcp = dc.data_ptr<float>();
  float* dhrec = dh_rec.get();

  const std::vector<float> keep_c_const(H, o.keep_c_p), keep_h_const(H, o.keep_h_p), ones(H, 1.f);

  for_row_blocks(B, T * B * G, [&](int64_t b0, int64_t b1, int64_t block) {
    const int64_t rows = b1 - b0;
    float* dlnhh = o.ln_hh ? dln_hh_parts.data_ptr<float>() + block * G : nullptr;
    float* dlncw = o.ln_c_w ? dln_cw_parts.data_ptr<float>() + block * H : nullptr;
    float* dlncb = o.ln_c_w ? dln_cb_parts.data_ptr<float>() + block * H : nullptr;
    std::vector<float> dcn_buf(H), dcx_buf(H), tc_buf(H), dkeep_buf(rows * H);
    float* dcn = dcn_buf.data();
    float* tc = tc_buf.data();
    float* dkeep = dkeep_buf.data();  // gradient reaching h_prev straight through zoneout or padding
    // the in-loop path's rows of one step, zero-padded to Gp columns: d pre-activations, d (W_hh h_rec) when
    // LN(W_hh h) sits between, d (W_ih x) when LN(W_ih x) does, h_rec, and dx
    const int64_t n_step = inloop ? rows * Gp : 0;
    std::vector<float> d_buf(n_step, 0.f), dgh_buf(o.ln_hh ? n_step : 0, 0.f), dih_buf(g_ih ? n_step : 0, 0.f);
    std::vector<float> hrec_buf(inloop ? rows * H : 0), dx_buf(inloop && need_dx ? rows * Ip : 0);
    std::vector<uint32_t> dgh_bf(path.half ? rows * ((G + 1) / 2) : 0);
    const float* dgh_step = inloop ? (o.ln_hh ? dgh_buf.data() : d_buf.data()) : nullptr;
    const float* dih_step = g_ih ? dih_buf.data() : d_buf.data();
    for (int64_t k = T - 1; k >= 0; --k) {
      const int64_t t = reverse ? T - 1 - k : k;
      const int64_t t_prev = reverse ? t + 1 : t - 1;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t bt = t * B + b, r = b - b0;
        float* dpre = inloop ? d_buf.data() + r * Gp : dpre_all + bt * G;
        float* dgh = inloop ? (o.ln_hh ? dgh_buf.data() + r * Gp : dpre) : dgh_all_p + bt * G;
        float* hrec = inloop ? hrec_buf.data() + r * H : hrec_all + bt * H;
        float* dhr = dhp + b * H;
        float* dcr = dcp + b * H;
        float* dk = dkeep + r * H;
        if (!is_valid(o, t, b)) {  // padding: the state's gradient passes through untouched
          std::memset(dpre, 0, G * sizeof(float));
          if (o.ln_hh) std::memset(dgh, 0, G * sizeof(float));
          std::memset(hrec, 0, H * sizeof(float));
          for (int64_t j = 0; j < H; ++j) dk[j] = dhr[j];
          continue;
        }
        // the state this step started from: the initial one, or the one after the previous valid step
        const bool first = t_prev < 0 || t_prev >= T || !is_valid(o, t_prev, b);
        const float* hprev = first ? h0p + b * H : yp_all + (t_prev * B + b) * H;
        const float* cprev = first ? c0p + b * H : call_p + (t_prev * B + b) * H;
        const float* m = o.rec_mask ? o.rec_mask + b * H : ones.data();
        const float* gr = gp_all + bt * G;
        const float* dyr = dy_rows.at(b, t);
        const float* kc = o.keep_c ? o.keep_c + bt * H : keep_c_const.data();
        const float* kh = o.keep_h ? o.keep_h + bt * H : keep_h_const.data();
        const float* chat = o.ln_c_w ? c_hat.data_ptr<float>() + bt * H : nullptr;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) hrec[j] = hprev[j] * m[j];
        if (chat) {  // tanh(LN(c_new)) again, from the saved LN(c_new)
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) tc[j] = tanhf_fast(chat[j] * o.ln_c_w[j] + o.ln_c_b[j]);
        } else {     // or from the gates and c_prev: c_new = f c_prev + i g
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) tc[j] = tanhf_fast(gr[H + j] * cprev[j] + gr[j] * gr[2 * H + j]);
        }
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // through h = z h_prev + (1 - z) o tanh(LN(c_new))
          const float dh_tot = dhr[j] + dyr[j];
          const float zh = kh[j];
          const float dh_new = (1.f - zh) * dh_tot;
          dk[j] = zh * dh_tot;
          const float og = gr[3 * H + j];
          dpre[3 * H + j] = dh_new * tc[j] * og * (1.f - og);  // d pre_o
          dcn[j] = dh_new * og * (1.f - tc[j] * tc[j]);       // d of tanh's argument
        }
        if (o.ln_c_w) {
          for (int64_t j = 0; j < H; ++j) dlncb[j] += dcn[j];
          normalise_backward(dcn, chat, o.ln_c_w, rstd_c.data_ptr<float>()[bt], H, dcx_buf.data(), dlncw);
          std::memcpy(dcn, dcx_buf.data(), H * sizeof(float));
        }
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const float zc = kc[j];
          const float dc_new = (1.f - zc) * dcr[j] + dcn[j];
          const float i = gr[j], f = gr[H + j], g = gr[2 * H + j];
          dcr[j] = dc_new * f + zc * dcr[j];                 // d c_prev
          dpre[j] = dc_new * g * i * (1.f - i);              // d pre_i
          dpre[H + j] = dc_new * cprev[j] * f * (1.f - f);   // d pre_f
          dpre[2 * H + j] = dc_new * i * (1.f - g * g);      // d pre_g
        }
        if (o.ln_hh) {
          const float* ghat = gh_hat.data_ptr<float>() + bt * G;
          normalise_backward(dpre, ghat, o.ln_hh, rstd_hh.data_ptr<float>()[bt], G, dgh, dlnhh);
        }
      }
      // d h_prev: back through W_hh and the recurrent-dropout mask, plus the straight-through part
      const float* dgh_rows = inloop ? dgh_step : dgh_all_p + (t * B + b0) * G;
      if (path.half) {
        pairs_bf16(dgh_rows, G, rows, G, dgh_bf.data());
        bf16_gemm(rows, (G + 1) / 2, Hp, dgh_bf.data(), w_bf.data(), dhrec + b0 * Hp, Hp);
      } else {
        small_gemm(rows, G, Hp, {dgh_rows, inloop ? Gp : G, 1}, w_pad.get(), Hp, dhrec + b0 * Hp, Hp);
      }
      for (int64_t b = b0; b < b1; ++b) {
        const float* dk = dkeep + (b - b0) * H;
        const float* m = o.rec_mask ? o.rec_mask + b * H : ones.data();
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dhp[b * H + j] = dhrec[b * ldh + j] * m[j] + dk[j];
      }
      if (inloop) {  // this step's share of the weight gradients, and dx, while its rows are in cache
        float* dbias_acc = dbias_parts.data() + block * Gp;
        for (int64_t r = 0; r < rows; ++r) {
          const float* dpre = d_buf.data() + r * Gp;
#pragma omp simd
          for (int64_t j = 0; j < G; ++j) dbias_acc[j] += dpre[j];
        }
        if (g_ih) {  // back through LN(W_ih x)
          float* dln = dln_ih_parts.data_ptr<float>() + block * G;
          for (int64_t b = b0; b < b1; ++b) {
            const int64_t bt = t * B + b, r = b - b0;
            normalise_backward(d_buf.data() + r * Gp, xhat_ih.data_ptr<float>() + bt * G, g_ih,
                               rstd_ih.data_ptr<float>()[bt], G, dih_buf.data() + r * Gp, dln);
          }
        }
        auto* const accumulate = k == T - 1 ? &small_gemm<false> : &small_gemm<true>;  // the first step writes
        accumulate(H, rows, Gp, {hrec_buf.data(), 1, H}, dgh_step, Gp, dwhh_parts.get() + block * H * Gp, Gp);
        accumulate(I, rows, Gp, {x_rows.at(b0, t), 1, x_rows.sb}, dih_step, Gp, dwih_parts.get() + block * I * Gp,
                   Gp);
        if (need_dx) {
          small_gemm(rows, G, Ip, {dih_step, Gp, 1}, w_ih_pad.get(), Ip, dx_buf.data(), Ip);
          float* dxp = dx_tm.data_ptr<float>() + (t * B + b0) * I;
          for (int64_t r = 0; r < rows; ++r) std::memcpy(dxp + r * I, dx_buf.data() + r * Ip, I * sizeof(float));
        }
      }
    }
  });
  Tensor dw_hh, dw_ih, dbias, dln_ih = empty, dx = empty;
  if (inloop) {
    dw_hh = sum_transposed(dwhh_parts.get(), blocks, H, Gp, G);
    dw_ih = sum_transposed(dwih_parts.get(), blocks, I, Gp, G);
    dbias = sum_transposed(dbias_parts.data(), blocks, 1, Gp, G).view({G});
    if (g_ih) dln_ih = dln_ih_parts.sum(0);
    if (need_dx) dx = dx_tm.transpose(0, 1);  // batch-first view
  } else {  // the weight gradients, all steps at once
    dw_hh = grad_of_weight(dgh_all.view({T * B, G}), h_rec_all.view({T * B, H}), path.half);
    dbias = dxproj.view({T * B, G}).sum(0);
    if (g_ih) {  // back through LN(W_ih x), in place: dxproj becomes d (W_ih x)
      float* dp = dpre_all;
      const float* xh = xhat_ih.data_ptr<float>();
      const float* rs = rstd_ih.data_ptr<float>();
      const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
      Tensor parts = at::zeros({threads, G}, f32);
      float* pp = parts.data_ptr<float>();
      at::parallel_for(0, B * T, 256, [&](int64_t r0, int64_t r1) {
        std::vector<float> tmp(G);
        float* acc = pp + std::min<int64_t>(at::get_thread_num(), threads - 1) * G;
        for (int64_t r = r0; r < r1; ++r) {
          normalise_backward(dp + r * G, xh + r * G, g_ih, rs[r], G, tmp.data(), acc);
          std::memcpy(dp + r * G, tmp.data(), G * sizeof(float));
        }
      });
      dln_ih = parts.sum(0);
    }
    Tensor d2 = dxproj.view({T * B, G});
    dw_ih = grad_of_weight(d2, x_in.view({T * B, I}), bf16);
    if (need_dx) dx = matmul(d2, w_ih, bf16).view({T, B, I}).transpose(0, 1);  // batch-first view
  }
  Tensor dln_hh = o.ln_hh ? dln_hh_parts.sum(0) : empty;
  Tensor dln_c_w = o.ln_c_w ? dln_cw_parts.sum(0) : empty;
  Tensor dln_c_b = o.ln_c_w ? dln_cb_parts.sum(0) : empty;
  return {dx, dh, dc, dw_ih, dw_hh, dbias, dln_ih, dln_hh, dln_c_w, dln_c_b};
}

// The whole stack as one autograd node built here, for the common case: one direction, no per-step masks
// (recurrent dropout, zoneout) and no padding. Its forward and its backward loop over the layers in C++, so
// a training step spends no Python time inside the LSTM (on small models that time rivals the arithmetic).
// params: per layer W_ih, W_hh, then b_ih, b_hh when the stack has biases, then ln_ih, ln_hh, ln_c_w,
// ln_c_b with layer norms. layer_masks: none, or the dropout masks (B, T, H) on the outputs of the layers
// below the top. save: keep what the backward needs (false without gradients, fused.py decides: then no
// gates or cell states of every step are written). Returns y (B, T, H) and h_n, c_n (L, B, H).
class StackFunction : public torch::autograd::Function<StackFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const Tensor& x,
                                                const Tensor& h0, const Tensor& c0, at::TensorList params,
                                                const std::vector<Tensor>& layer_masks, bool bias,
                                                bool layer_norm, bool bf16, bool save) {
    ctx->set_materialize_grads(false);  // unused outputs get no zero-filled gradients
    const int64_t n = per_layer(bias, layer_norm), L = h0.size(0);
    TORCH_CHECK(static_cast<int64_t>(params.size()) == n * L, "stack_forward: wrong number of parameters");
    TORCH_CHECK(layer_masks.empty() || static_cast<int64_t>(layer_masks.size()) == L - 1,
                "stack_forward: one dropout mask per layer below the top, or none");
    // saved: the parameters, h0, c0, per layer its input and layer_forward's 9 tensors, the masks
    std::vector<Tensor> saved(params.begin(), params.end());
    saved.push_back(h0);
    saved.push_back(c0);
    Tensor input = x, top_tm, h_n, c_n;
    {
      at::AutoDispatchBelowADInplaceOrView below_autograd;  // see the note before layer_forward_tm
      std::vector<Tensor> h_layers, c_layers;
      for (int64_t l = 0; l < L; ++l) {
        const Tensor* w = params.data() + l * n;
        const Tensor b = bias ? w[2] + w[3] : at::empty({0}, x.options());
        const auto ln = [&](int64_t k) { return gain(w, n, k, layer_norm); };
        const std::vector<Tensor> out = layer_forward_tm(input, h0[l], c0[l], w[0], w[1], b, ln(0), ln(1), ln(2),
                                                         ln(3), c10::nullopt, c10::nullopt, c10::nullopt, 0.0, 0.0,
                                                         c10::nullopt, false, bf16, save);
        if (save) {
          saved.push_back(input);
          saved.insert(saved.end(), out.begin() + 3, out.end());
        }
        h_layers.push_back(out[1]);
        c_layers.push_back(out[2]);
        if (l + 1 < L) {
          const Tensor y = out[0].transpose(0, 1);  // (B, T, H), the next layer's input
          input = layer_masks.empty() ? y : y * layer_masks[l];
        } else {
          top_tm = out[0];
        }
      }
      h_n = at::stack(h_layers);
      c_n = at::stack(c_layers);
    }
    if (save) {
      saved.insert(saved.end(), layer_masks.begin(), layer_masks.end());
      ctx->save_for_backward(saved);
    }
    ctx->saved_data["layers"] = L;
    ctx->saved_data["bias"] = bias;
    ctx->saved_data["layer_norm"] = layer_norm;
    ctx->saved_data["bf16"] = bf16;
    return {top_tm.transpose(0, 1), h_n, c_n};  // y (B, T, H): a view autograd tracks (the note above)
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const int64_t L = ctx->saved_data["layers"].toInt();
    const bool bias = ctx->saved_data["bias"].toBool(), layer_norm = ctx->saved_data["layer_norm"].toBool();
    const bool bf16 = ctx->saved_data["bf16"].toBool();
    const std::vector<Tensor> saved = ctx->get_saved_variables();
    at::AutoDispatchBelowADInplaceOrView below_autograd;  // see the note before layer_forward_tm
    const int64_t n = per_layer(bias, layer_norm);
    const Tensor* params = saved.data();
    const Tensor& h0 = saved[n * L];
    const Tensor& c0 = saved[n * L + 1];
    const Tensor* per = saved.data() + n * L + 2;  // per layer: its input, then layer_forward's 9 tensors
    const Tensor* masks = per + 10 * L;
    const bool masked = static_cast<int64_t>(saved.size()) > n * L + 2 + 10 * L;
    Tensor dy = grads[0], dh_n = grads[1], dc_n = grads[2];
    if (!dy.defined()) dy = at::zeros({per[0].size(0), per[0].size(1), h0.size(2)}, h0.options());
    if (!dh_n.defined()) dh_n = at::zeros_like(h0);
    if (!dc_n.defined()) dc_n = at::zeros_like(c0);
    // one gradient per forward argument: x, h0, c0, each parameter, then the five that take none
    torch::autograd::variable_list out(3 + n * L + 5);
    std::vector<Tensor> dh0(L), dc0(L);
    for (int64_t l = L - 1; l >= 0; --l) {
      const Tensor* w = params + l * n;
      const Tensor* s = per + l * 10;
      const bool need_dx = l > 0 || ctx->needs_input_grad(0);
      const auto ln = [&](int64_t k) { return gain(w, n, k, layer_norm); };
      // g: dx, dh0, dc0, dW_ih, dW_hh, d bias, d ln_ih, d ln_hh, d ln_c_w, d ln_c_b
      const std::vector<Tensor> g = layer_backward(
          dy, dh_n[l].contiguous(), dc_n[l].contiguous(), s[0], h0[l], c0[l], w[0], w[1], s[1], s[2], s[3],
          s[4], s[5], s[6], s[7], s[8], s[9], ln(0), ln(1), ln(2), ln(3), c10::nullopt, c10::nullopt,
          c10::nullopt, 0.0, 0.0, c10::nullopt, false, bf16, need_dx);
      dh0[l] = g[1];
      dc0[l] = g[2];
      Tensor* d = out.data() + 3 + l * n;
      d[0] = g[3];
      d[1] = g[4];
      if (bias) {
        d[2] = g[5];
        d[3] = g[5].clone();  // b_ih and b_hh get the same gradient, in tensors of their own
      }
      if (layer_norm) {
        for (int64_t k = 0; k < 4; ++k) d[n - 4 + k] = g[6 + k];
      }
      if (l > 0) {
        dy = masked ? g[0] * masks[l - 1] : g[0];
      } else if (need_dx) {
        out[0] = g[0];
      }
    }
    if (ctx->needs_input_grad(1)) out[1] = at::stack(dh0);
    if (ctx->needs_input_grad(2)) out[2] = at::stack(dc0);
    return out;
  }

 private:
  static int64_t per_layer(bool bias, bool layer_norm) { return 2 + (bias ? 2 : 0) + (layer_norm ? 4 : 0); }
  // the k-th layer-norm gain (ln_ih, ln_hh, ln_c_w, ln_c_b) of a layer's n parameters w, if it has them
  static c10::optional<Tensor> gain(const Tensor* w, int64_t n, int64_t k, bool layer_norm) {
    return layer_norm ? c10::optional<Tensor>(w[n - 4 + k]) : c10::nullopt;
  }
};

std::vector<Tensor> stack_forward(const Tensor& x, const Tensor& h0, const Tensor& c0,
                                  const std::vector<Tensor>& params, const std::vector<Tensor>& layer_masks,
                                  bool bias, bool layer_norm, bool bf16, bool save) {
  return StackFunction::apply(x, h0, c0, at::TensorList(params), layer_masks, bias, layer_norm, bf16, save);
}

// One step of a whole unidirectional stack, for stepwise inference (generation, live forecasting): no
// autograd, no Python between layers. x (B, I); h, c (L, B, H); per layer W_ih (G, I_l), W_hh (G, H) and
// the summed bias (G) or an empty tensor. keep_p is zoneout's evaluation-time keep probability (0 for
// none). Returns the new h and c, (L, B, H). At batch 1 each layer is a matrix-vector product split by
// units across threads, so each thread streams its share of the weights once per step.
std::vector<Tensor> stack_step(const Tensor& x, const Tensor& h, const Tensor& c, const std::vector<Tensor>& w_ih,
                               const std::vector<Tensor>& w_hh, const std::vector<Tensor>& bias, double keep_p) {
  const int64_t L = h.size(0), B = h.size(1), H = h.size(2), G = 4 * H;
  Tensor h_new = at::empty_like(h), c_new = at::empty_like(c);
  Tensor pre = at::empty({B, G}, h.options());
  const float z = static_cast<float>(keep_p);
  Tensor layer_in = x.contiguous();
  for (int64_t l = 0; l < L; ++l) {
    const int64_t I = layer_in.size(1);
    const float* xin = layer_in.data_ptr<float>();
    const float* wi = w_ih[l].data_ptr<float>();
    const float* wh = w_hh[l].data_ptr<float>();
    const float* bs = bias[l].numel() ? bias[l].data_ptr<float>() : nullptr;
    const float* hp = h[l].data_ptr<float>();
    const float* cp = c[l].data_ptr<float>();
    float* hn = h_new[l].data_ptr<float>();
    float* cn = c_new[l].data_ptr<float>();
    float* pp = pre.data_ptr<float>();
    // the cell update of units [j0, j1) of row b, from its pre-activations
    auto update = [&](int64_t b, int64_t j0, int64_t j1) {
      const float* pr = pp + b * G;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) {
        const float i = sigmoidf(pr[j]), f = sigmoidf(pr[H + j]);
        const float g = tanhf_fast(pr[2 * H + j]), o = sigmoidf(pr[3 * H + j]);
        const float c_fresh = f * cp[b * H + j] + i * g;
        const float h_fresh = o * tanhf_fast(c_fresh);
        cn[b * H + j] = z * cp[b * H + j] + (1.f - z) * c_fresh;
        hn[b * H + j] = z * hp[b * H + j] + (1.f - z) * h_fresh;
      }
    };
    if (B == 1) {
      const int64_t bytes = G * (I + H) * 4;
      const int64_t grain = bytes < (1 << 18) ? H : std::max<int64_t>(8, H / std::max(1, at::get_num_threads()));
      at::parallel_for(0, H, grain, [&](int64_t j0, int64_t j1) {
        for (int64_t q = 0; q < 4; ++q) {
          for (int64_t j = j0; j < j1; ++j) {
            const int64_t r = q * H + j;
            const float* wir = wi + r * I;
            const float* whr = wh + r * H;
            float acc = bs ? bs[r] : 0.f;
#pragma omp simd reduction(+ : acc)
            for (int64_t k = 0; k < I; ++k) acc += wir[k] * xin[k];
#pragma omp simd reduction(+ : acc)
            for (int64_t k = 0; k < H; ++k) acc += whr[k] * hp[k];
            pp[r] = acc;
          }
        }
        update(0, j0, j1);
      });
    } else {
      SingleThreadedBlas blas;
      at::parallel_for(0, B, std::max<int64_t>(1, B / std::max(1, at::get_num_threads())), [&](int64_t b0, int64_t b1) {
        std::vector<float> tmp((b1 - b0) * G);
        gemm_rows(xin + b0 * I, b1 - b0, I, wi, G, true, pp + b0 * G);
        gemm_rows(hp + b0 * H, b1 - b0, H, wh, G, true, tmp.data());
        for (int64_t b = b0; b < b1; ++b) {
          float* pr = pp + b * G;
          const float* tr = tmp.data() + (b - b0) * G;
#pragma omp simd
          for (int64_t r = 0; r < G; ++r) pr[r] += tr[r] + (bs ? bs[r] : 0.f);
          update(b, 0, H);
        }
      });
    }
    layer_in = h_new[l];
  }
  return {h_new, c_new};
}

// The next token from logits (V) and one uniform number u in [0, 1): the banned id (or -1) never comes;
// temperature 0 takes the argmax; otherwise softmax(logits / temperature) restricted to the top_k largest
// (0 = all), sampled by inverse CDF (the first id whose cumulative probability exceeds u). nn/sampling.py's
// pick is the same rule in PyTorch.
int64_t pick_token(const float* logits, int64_t V, float u, float temperature, int64_t top_k, int64_t banned,
                   std::vector<float>& work) {
  int64_t best = -1;
  for (int64_t v = 0; v < V; ++v) {
    if (v != banned && (best < 0 || logits[v] > logits[best])) best = v;
  }
  if (temperature == 0.f || best < 0) return std::max<int64_t>(best, 0);
  const float lowest = std::numeric_limits<float>::lowest();  // (no infinities under -ffast-math)
  float kth = lowest;
  if (top_k > 0 && top_k < V) {
    work.assign(logits, logits + V);
    if (banned >= 0) work[banned] = lowest;
    std::nth_element(work.begin(), work.begin() + (top_k - 1), work.end(), std::greater<float>());
    kth = work[top_k - 1];
  }
  work.resize(V);
  float total = 0.f;
  for (int64_t v = 0; v < V; ++v) {
    const bool allowed = v != banned && logits[v] >= kth;
    work[v] = allowed ? std::exp((logits[v] - logits[best]) / temperature) : 0.f;
    total += work[v];
  }
  const float threshold = u * total;
  float cumulative = 0.f;
  for (int64_t v = 0; v < V; ++v) {
    cumulative += work[v];
    if (work[v] > 0.f && cumulative > threshold) return v;
  }
  return best;  // rounding left the threshold above the total
}

// Generation with the state carried, one call for n tokens: at step s, the token is picked from the current
// logits with uniforms[s] (pick_token), then the stack reads its embedding and the head gives the next
// logits. logits (V); h, c (L, 1, H); embedding (V_in, E); per layer W_ih, W_hh and the summed bias (or
// empty); head_w (V, H), head_b (V) or empty. Returns the n ids, the final h, c (L, 1, H) and the last
// logits (V). One parallel region for the whole run: threads split each layer's units and the head's rows,
// and meet at one barrier per layer and one per step.
std::vector<Tensor> sample_chain(const Tensor& logits0, const Tensor& h0, const Tensor& c0, const Tensor& embedding,
                                 const std::vector<Tensor>& w_ih, const std::vector<Tensor>& w_hh,
                                 const std::vector<Tensor>& bias, const Tensor& head_w, const Tensor& head_b,
                                 const Tensor& uniforms, double temperature, int64_t top_k, int64_t banned,
                                 double keep_p) {
  const int64_t L = h0.size(0), H = h0.size(2), G = 4 * H, V = head_w.size(0), E = embedding.size(1);
  const int64_t n = uniforms.size(0);
  Tensor ids = at::empty({n}, at::TensorOptions().dtype(at::kLong));
  Tensor h_a = h0.clone(), h_b = at::empty_like(h0), c = c0.clone();
  Tensor logits_a = logits0.clone(), logits_b = at::empty_like(logits0);
  int64_t* idp = ids.data_ptr<int64_t>();
  const float* up = uniforms.data_ptr<float>();
  const float* emb = embedding.data_ptr<float>();
  const float* hw = head_w.data_ptr<float>();
  const float* hb = head_b.numel() ? head_b.data_ptr<float>() : nullptr;
  std::vector<const float*> wi(L), wh(L), bs(L);
  int64_t bytes = V * H * 4;
  for (int64_t l = 0; l < L; ++l) {
    wi[l] = w_ih[l].data_ptr<float>();
    wh[l] = w_hh[l].data_ptr<float>();
    bs[l] = bias[l].numel() ? bias[l].data_ptr<float>() : nullptr;
    bytes += G * (w_ih[l].size(1) + H) * 4;
  }
  const float z = static_cast<float>(keep_p), temp = static_cast<float>(temperature);
  float* cp = c.data_ptr<float>();
  // small models stay on one thread: a barrier costs more than streaming their weights
  const int threads = bytes < (1 << 19) ? 1 : std::max(1, at::get_num_threads());

#pragma omp parallel num_threads(threads)
  {
    const int64_t tid = omp_get_thread_num(), team = omp_get_num_threads();
    const int64_t j0 = H * tid / team, j1 = H * (tid + 1) / team;  // this thread's units
    const int64_t v0 = V * tid / team, v1 = V * (tid + 1) / team;  // and head rows
    std::vector<float> work;
    float* h_old = h_a.data_ptr<float>();
    float* h_new = h_b.data_ptr<float>();
    float* lg_cur = logits_a.data_ptr<float>();
    float* lg_next = logits_b.data_ptr<float>();
    for (int64_t s = 0; s < n; ++s) {
      const int64_t id = pick_token(lg_cur, V, up[s], temp, top_k, banned, work);  // the same on every thread
      if (tid == 0) idp[s] = id;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t I = l == 0 ? E : H;
        const float* x = l == 0 ? emb + id * E : h_new + (l - 1) * H;
        const float* hp = h_old + l * H;
        float* hn = h_new + l * H;
        float* cl = cp + l * H;
        for (int64_t j = j0; j < j1; ++j) {
          float pre[4];
          for (int64_t q = 0; q < 4; ++q) {
            const int64_t r = q * H + j;
            const float* wir = wi[l] + r * I;
            const float* whr = wh[l] + r * H;
            float acc = bs[l] ? bs[l][r] : 0.f;
#pragma omp simd reduction(+ : acc)
            for (int64_t k = 0; k < I; ++k) acc += wir[k] * x[k];
#pragma omp simd reduction(+ : acc)
            for (int64_t k = 0; k < H; ++k) acc += whr[k] * hp[k];
            pre[q] = acc;
          }
          const float i = sigmoidf(pre[0]), f = sigmoidf(pre[1]), g = tanhf_fast(pre[2]), o = sigmoidf(pre[3]);
          const float c_fresh = f * cl[j] + i * g;
          const float h_fresh = o * tanhf_fast(c_fresh);
          cl[j] = z * cl[j] + (1.f - z) * c_fresh;
          hn[j] = z * hp[j] + (1.f - z) * h_fresh;
        }
#pragma omp barrier
      }
      const float* top = h_new + (L - 1) * H;
      for (int64_t v = v0; v < v1; ++v) {
        const float* row = hw + v * H;
        float acc = hb ? hb[v] : 0.f;
#pragma omp simd reduction(+ : acc)
        for (int64_t k = 0; k < H; ++k) acc += row[k] * top[k];
        lg_next[v] = acc;
      }
      std::swap(h_old, h_new);
      std::swap(lg_cur, lg_next);
#pragma omp barrier
    }
  }
  // after an even number of steps the buffers are back where they started
  Tensor h_final = n % 2 == 0 ? h_a : h_b;
  Tensor logits_final = n % 2 == 0 ? logits_a : logits_b;
  return {ids, h_final, c, logits_final};
}

// lstmkit.nn.Linear's products on float32 CPU matrices, by the kernels above: a @ b (any strides), and the
// gradient of a weight, d^T @ x.
Tensor dense_matmul(const Tensor& a, const Tensor& b) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0), "dense_matmul: (M x K) @ (K x N)");
  TORCH_CHECK(a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && a.is_cpu() && b.is_cpu(),
              "dense_matmul: float32 CPU tensors");
  return mm_f32(a, b);
}

Tensor dense_weight_grad(const Tensor& d, const Tensor& x) {
  TORCH_CHECK(d.dim() == 2 && x.dim() == 2 && d.size(0) == x.size(0), "dense_weight_grad: (N x G), (N x K)");
  TORCH_CHECK(d.scalar_type() == at::kFloat && x.scalar_type() == at::kFloat && d.is_cpu() && x.is_cpu(),
              "dense_weight_grad: float32 CPU tensors");
  return weight_grad(d, x);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "lstmkit's fused LSTM recurrence for the CPU";
  m.def("layer_forward", &layer_forward, "one LSTM layer and direction over a whole sequence");
  m.def("layer_backward", &layer_backward, "its backward");
  m.def("stack_forward", &stack_forward, "a unidirectional stack without per-step masks, one autograd node");
  m.def("stack_step", &stack_step, "one step of a unidirectional stack, without autograd");
  m.def("sample_chain", &sample_chain, "generation with the state carried, n tokens in one call");
  m.def("dense_matmul", &dense_matmul, "a @ b in float32 by the tiled kernel (lstmkit.nn.Linear)");
  m.def("dense_weight_grad", &dense_weight_grad, "d^T @ x in float32 by the tiled kernel (lstmkit.nn.Linear)");
  m.def("bernoulli_mask", &bernoulli_mask, "the regularisers' random masks, counter-based (random.cpp)");
  m.def("adam_step", &adam_step, "Adam or AdamW on CPU float32 parameters in one call, or False (optim.cpp)");
}
