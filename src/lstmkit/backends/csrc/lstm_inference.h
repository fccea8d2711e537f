// Stepwise inference: one step of a whole unidirectional stack (stack_step), and generation with the state
// carried, n tokens in one call (sample_chain, with pick_token's sampling rule). No autograd, no Python
// between layers or steps.
// Not here: the sequence-at-a-time layers (lstm_layer.h) and their autograd node (lstm_stack.h); the gate
// maths both use (lstm_gates.h). Read fused_lstm.cpp, the bindings, next. Included once, by fused_lstm.cpp.
#pragma once

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <omp.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <vector>

#include "lstm_gates.h"
#include "lstm_matmul.h"

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
        const CellOutput s = lstm_cell(pr[j], pr[H + j], pr[2 * H + j], pr[3 * H + j], cp[b * H + j], hp[b * H + j], z);
        cn[b * H + j] = s.c;
        hn[b * H + j] = s.h;
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
          const CellOutput s = lstm_cell(pre[0], pre[1], pre[2], pre[3], cl[j], hp[j], z);
          cl[j] = s.c;
          hn[j] = s.h;
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
