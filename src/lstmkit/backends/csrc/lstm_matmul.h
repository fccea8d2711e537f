// The matrix kernels of the fused LSTM, float32 and bfloat16: register-blocked products for the few rows a
// thread holds at each step (small_gemm, bf16_gemm), a tiled product on all threads for the products over
// all steps (tiled_gemm, mm_f32, weight_grad), the packing of operands into the layouts they read, and the
// hooks into the BLAS torch links (stepwise inference's products, gemm_rows).
// Not here: when each kernel is used (Path, in lstm_layer.h) and the gate maths that reads their results
// (lstm_gates.h). Read lstm_layer.h next. Included once, by fused_lstm.cpp.
#pragma once

#include <torch/extension.h>
#include <ATen/Parallel.h>
#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "lstm_buffers.h"

namespace {

using at::Tensor;

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
// On the per-step products (a few hundred units, the few tens of rows a thread holds) it outruns the BLAS,
// whose per-call set-up and packing do not pay off on so few rows. kSmallGemm bounds the weights for which
// every other product of a layer (the input projection, the weight gradients) runs with it too (Path, lstm_layer.h).
constexpr int64_t kSmallGemm = 65536;
inline bool small_weights(int64_t G, int64_t K) { return G * K <= kSmallGemm; }
inline int64_t pad16(int64_t n) { return (n + 15) / 16 * 16; }
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));  // the same, at any float alignment

struct Strided {
  const float* a;
  int64_t ars, acs;  // A (r, q) = a[r * ars + q * acs]
};

// The registers small_block accumulates in: one holds 16 floats with AVX-512, 8 without (a 64-byte vector
// type on a machine without AVX-512 is lowered element by element, many times slower), so a block's vector of
// 16 columns is kLanes registers.
#if defined(__AVX512F__)
typedef float lane __attribute__((vector_size(64)));
typedef float laneu __attribute__((vector_size(64), aligned(4)));
#else
typedef float lane __attribute__((vector_size(32)));
typedef float laneu __attribute__((vector_size(32), aligned(4)));
#endif
constexpr int kLaneFloats = sizeof(lane) / sizeof(float);
constexpr int kLanes = 16 / kLaneFloats;

template <int R, int NV, bool ACC>
inline void small_block(Strided A, int64_t k, const float* bm, int64_t ldb, float* c, int64_t ldc) {
  constexpr int U = NV * kLanes;  // registers across the block's columns
  lane acc[R][U];
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < U; ++u)
      acc[r][u] = ACC ? *reinterpret_cast<const laneu*>(c + r * ldc + kLaneFloats * u) : lane{};
  for (int64_t q = 0; q < k; ++q) {
    lane b[U];
    for (int u = 0; u < U; ++u) b[u] = *reinterpret_cast<const laneu*>(bm + q * ldb + kLaneFloats * u);
    for (int r = 0; r < R; ++r) {
      const float s = A.a[r * A.ars + q * A.acs];
      for (int u = 0; u < U; ++u) acc[r][u] += s * b[u];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < U; ++u) *reinterpret_cast<laneu*>(c + r * ldc + kLaneFloats * u) = acc[r][u];
}

template <int N>
using Int = std::integral_constant<int, N>;

// Calls f(r, j, Int<R>{}, Int<NV>{}) for every register block of a (rows x n) product: rows r..r+R-1 and
// columns j..j+16 NV-1, n a multiple of 16. Rows in blocks of at most 6 (24 accumulators and 4 loaded vectors
// fill the 32 registers, and each loaded vector of Bm then serves more rows than with blocks of 4), as even
// as the count allows: 15 rows as 5 + 5 + 5 rather than 6 + 6 + 3, since Bm is read once per block whatever
// its size and a short block is slow. Columns in blocks of 4 vectors (with AVX-512; see kBlockVectors), the
// last one shorter. With at most
// kColumnsOuter row blocks (the per-step products: a thread's few tens of rows) the columns are the outer
// loop, so that each column block of Bm, fetched from L3 for the first row block, is in L2 for the others
// (the W_hh of a layer of a few hundred units does not fit a core's L2). With more row blocks the rows are
// the outer loop within tiles of kTileCols columns of Bm, each in L2 while all the rows pass over it (large
// batches' per-step products; tiled_gemm hands over one such tile per call already) and a block of rows stays
// in L1.
// Without AVX-512 there are 16 registers of 8 floats, not 32 of 16: a block of 6 rows x 4 vectors (48 of
// them) would spill its accumulators to memory at every step of k, so columns go in blocks of one vector of
// 16 (6 rows x 2 registers of accumulators, 2 loaded, 1 broadcast).
#if defined(__AVX512F__)
constexpr int kBlockVectors = 4;
#else
constexpr int kBlockVectors = 1;
#endif
constexpr int64_t kColumnsOuter = 8, kTileCols = 256;
template <typename F>
void for_register_blocks(int64_t rows, int64_t n, const F& f) {
  // g(j, Int<NV>) for each block of columns j0..j1 - 1; g(r, Int<R>) for each block of rows
  auto column_blocks = [](int64_t j0, int64_t j1, const auto& g) {
    int64_t j = j0;
    for (; j + 16 * kBlockVectors <= j1; j += 16 * kBlockVectors) g(j, Int<kBlockVectors>{});
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
// line at a time (a plain loop over a large transposed matrix touches a new cache line at every element).
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

// m copied into (rows x pad16(cols)) with zeros in the padding columns: the operand small_gemm wants. Plain
// buffers rather than tensors here and below: on the small layers the dispatch cost of each temporary tensor
// adds up to a good share of a call.
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
// (k2 x ldb words, from packed_bf16), n a multiple of 16. Blocked as small_gemm is, and for the same reason:
// on the recurrent products' few rows it outruns at::mm in bfloat16.
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

// The all-step products of the larger layers in float32 (the input projection, the weight gradients, dx).
// C (rows x n) = A (rows x k) @ Bm (k x n) on all threads with small_gemm's register blocks, n a multiple of
// 16: Bm is worked through a block of kTileK rows by kTileN columns (256 KB) at a time, which stays in a
// core's L2 cache while all of the thread's rows pass over it. The threads split the larger of the two
// operands, each reading its own half of it: A's rows when A is the larger, otherwise Bm's columns. On the
// layers' all-step products it outruns torch's at::mm, the most on the weight gradients (whose inner
// dimension is the whole sequence).
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
