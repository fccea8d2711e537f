// The fused LSTM recurrence on the CPU: one layer in one direction, forward and backward over the whole
// sequence in one call, and a one-step stack for stepwise inference.
//
// The equations are core/step.py's lstm_step; backends/fused.py does everything that is one big matrix
// product (the input projection of all steps, the weight gradient of the input projection). Here, per
// step: the recurrent product h_rec @ W_hh^T, then one pass over memory for the gate maths (sigmoid and
// tanh from one exp each, vectorised by the compiler), the cell update, the optional layer norms and
// zoneout, and the padding mask. Shapes: T steps, B batch, H units, G = 4H (gates i, f, g, o).

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstring>
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

// C (rows x n) = A (rows x k) @ W^T with W (n x k); or, when w_transposed is false, C = A @ W with
// W (k x n). Row-major. Runs on the calling thread (callers split the batch across threads).
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc) __attribute__((weak));

// MKL's per-thread thread count (when torch was built with MKL): the per-step products are small, and
// splitting them across threads costs more than it gains, so each block of rows runs them on one thread.
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

void gemm_rows(const float* a, int64_t rows, int64_t k, const float* w, int64_t n, bool w_transposed, float* c) {
  if (rows == 0) return;
  if (sgemm_ != nullptr) {  // the BLAS torch links (column-major): C^T = op(W) A^T
    const int m_ = static_cast<int>(n), n_ = static_cast<int>(rows), k_ = static_cast<int>(k);
    const float one = 1.f, zero = 0.f;
    const int lda = w_transposed ? k_ : m_;
    sgemm_(w_transposed ? "T" : "N", "N", &m_, &n_, &k_, &one, w, &lda, a, &k_, &zero, c, &m_);
    return;
  }
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  Tensor at_a = at::from_blob(const_cast<float*>(a), {rows, k}, opts);
  Tensor at_w = w_transposed ? at::from_blob(const_cast<float*>(w), {n, k}, opts).t()
                             : at::from_blob(const_cast<float*>(w), {k, n}, opts);
  Tensor at_c = at::from_blob(c, {rows, n}, opts);
  at::mm_out(at_c, at_a, at_w);
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
template <typename F>
void for_row_blocks(int64_t rows, int64_t work, const F& f) {
  const int64_t threads = at::get_num_threads();
  if (threads <= 1 || rows < 2 || work < 200000) {
    SingleThreadedBlas blas;
    f(0, rows, 0);
    return;
  }
  const int64_t blocks = std::min<int64_t>(threads, rows);
  at::parallel_for(0, blocks, 1, [&](int64_t k0, int64_t k1) {
    SingleThreadedBlas blas;
    for (int64_t k = k0; k < k1; ++k) f(k * rows / blocks, (k + 1) * rows / blocks, k);
  });
}

}  // namespace

// Forward of one layer in one direction.
//   xproj (T, B, G): W_ih x_t + biases (already layer-normalised with a layer-norm LSTM); h0, c0 (B, H);
//   w_hh (G, H). Returns y (T, B, H), h_T, c_T (B, H) and the tensors the backward needs (and the traces):
//   gates (T, B, G) activated i, f, g, o; c_prev (T, B, H); h_rec (T, B, H); tanh_c (T, B, H);
//   c_hat (T, B, H) and rstd_c (T, B) with LN(c); gh_hat (T, B, G) and rstd_hh (T, B) with LN(W_hh h);
//   c_out (T, B, H) the cell state after each step (0 on padded steps).
std::vector<Tensor> layer_forward(const Tensor& xproj, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                                  const c10::optional<Tensor>& ln_hh, const c10::optional<Tensor>& ln_c_w,
                                  const c10::optional<Tensor>& ln_c_b, const c10::optional<Tensor>& rec_mask,
                                  const c10::optional<Tensor>& keep_c, const c10::optional<Tensor>& keep_h,
                                  double keep_c_p, double keep_h_p, const c10::optional<Tensor>& lengths,
                                  bool reverse) {
  const int64_t T = xproj.size(0), B = xproj.size(1), G = xproj.size(2), H = G / 4;
  const Options o = make_options(ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, keep_c_p, keep_h_p, lengths);
  const auto f32 = xproj.options();
  Tensor y = at::empty({T, B, H}, f32);
  Tensor gates = at::empty({T, B, G}, f32);
  Tensor c_prev_all = at::empty({T, B, H}, f32);
  Tensor h_rec_all = at::empty({T, B, H}, f32);
  Tensor tanh_c = at::empty({T, B, H}, f32);
  Tensor c_out = at::empty({T, B, H}, f32);
  Tensor c_hat = o.ln_c_w ? at::empty({T, B, H}, f32) : at::empty({0}, f32);
  Tensor rstd_c = o.ln_c_w ? at::empty({T, B}, f32) : at::empty({0}, f32);
  Tensor gh_hat = o.ln_hh ? at::empty({T, B, G}, f32) : at::empty({0}, f32);
  Tensor rstd_hh = o.ln_hh ? at::empty({T, B}, f32) : at::empty({0}, f32);
  Tensor h = h0.clone(), c = c0.clone();  // the carried state, (B, H)
  Tensor gh = at::empty({B, G}, f32);     // W_hh h_rec of one step, then the pre-activations

  const float* w = w_hh.data_ptr<float>();
  const float* xp_all = xproj.data_ptr<float>();
  float* gp_all = gates.data_ptr<float>();
  float* hp = h.data_ptr<float>();
  float* cp = c.data_ptr<float>();
  float* ghp = gh.data_ptr<float>();
  float* yp_all = y.data_ptr<float>();
  float* cprev_all = c_prev_all.data_ptr<float>();
  float* hrec_all = h_rec_all.data_ptr<float>();
  float* tc_all = tanh_c.data_ptr<float>();
  float* cout_all = c_out.data_ptr<float>();
  float* chat_all = o.ln_c_w ? c_hat.data_ptr<float>() : nullptr;
  float* rc_all = o.ln_c_w ? rstd_c.data_ptr<float>() : nullptr;
  float* ghh_all = o.ln_hh ? gh_hat.data_ptr<float>() : nullptr;
  float* rhh_all = o.ln_hh ? rstd_hh.data_ptr<float>() : nullptr;

  // zoneout keep values when there are no masks: the evaluation-time probability (0 without zoneout)
  const std::vector<float> keep_c_const(H, o.keep_c_p), keep_h_const(H, o.keep_h_p), ones(H, 1.f);

  for_row_blocks(B, T * B * G, [&](int64_t b0, int64_t b1, int64_t) {
    for (int64_t k = 0; k < T; ++k) {
      const int64_t t = reverse ? T - 1 - k : k;
      const int64_t tb = t * B;
      float* hrec = hrec_all + tb * H;
      for (int64_t b = b0; b < b1; ++b) {
        const float* m = o.rec_mask ? o.rec_mask + b * H : ones.data();
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) hrec[b * H + j] = hp[b * H + j] * m[j];
      }
      gemm_rows(hrec + b0 * H, b1 - b0, H, w, G, true, ghp + b0 * G);  // W_hh h_rec, rows b0..b1
      for (int64_t b = b0; b < b1; ++b) {
        float* pre = ghp + b * G;
        const float* xr = xp_all + (tb + b) * G;
        float* gr = gp_all + (tb + b) * G;
        float* hr = hp + b * H;
        float* cr = cp + b * H;
        float* yr = yp_all + (tb + b) * H;
        float* cprev = cprev_all + (tb + b) * H;
        float* cn = tc_all + (tb + b) * H;  // holds c_new, then LN(c_new), and finally tanh of it
        float* cout = cout_all + (tb + b) * H;
        if (!is_valid(o, t, b)) {  // padding: the state carries over, outputs and traces are 0
          for (int64_t j = 0; j < G; ++j) gr[j] = 0.f;
          for (int64_t j = 0; j < H; ++j) {
            yr[j] = cout[j] = cn[j] = 0.f;
            cprev[j] = cr[j];
          }
          continue;
        }
        if (o.ln_hh) {
          rhh_all[tb + b] = normalise(pre, G);
          float* saved = ghh_all + (tb + b) * G;
          for (int64_t j = 0; j < G; ++j) {
            saved[j] = pre[j];
            pre[j] *= o.ln_hh[j];
          }
        }
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
          cprev[j] = cr[j];
          cn[j] = f * cr[j] + i * g;
        }
        const float* kc = o.keep_c ? o.keep_c + (tb + b) * H : keep_c_const.data();
        const float* kh = o.keep_h ? o.keep_h + (tb + b) * H : keep_h_const.data();
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // zoneout of c mixes in c_new before any normalisation
          const float z = kc[j];
          cr[j] = z * cr[j] + (1.f - z) * cn[j];
          cout[j] = cr[j];
        }
        if (o.ln_c_w) {
          rc_all[tb + b] = normalise(cn, H);
          float* saved = chat_all + (tb + b) * H;
          for (int64_t j = 0; j < H; ++j) {
            saved[j] = cn[j];
            cn[j] = cn[j] * o.ln_c_w[j] + o.ln_c_b[j];
          }
        }
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const float tc = tanhf_fast(cn[j]);
          cn[j] = tc;
          const float z = kh[j];
          hr[j] = z * hr[j] + (1.f - z) * gr[3 * H + j] * tc;
          yr[j] = hr[j];
        }
      }
    }
  });
  return {y, h, c, gates, c_prev_all, h_rec_all, tanh_c, c_hat, rstd_c, gh_hat, rstd_hh, c_out};
}

// Backward of layer_forward. dy (T, B, H), dh_T, dc_T (B, H) and the saved tensors in; returns
// d xproj (T, B, G), dh0, dc0 (B, H), dW_hh (G, H) and the layer norms' gradients (empty when absent).
std::vector<Tensor> layer_backward(const Tensor& dy, const Tensor& dh_T, const Tensor& dc_T, const Tensor& w_hh,
                                   const Tensor& gates, const Tensor& c_prev_all, const Tensor& h_rec_all,
                                   const Tensor& tanh_c, const Tensor& c_hat, const Tensor& rstd_c,
                                   const Tensor& gh_hat, const Tensor& rstd_hh, const c10::optional<Tensor>& ln_hh,
                                   const c10::optional<Tensor>& ln_c_w, const c10::optional<Tensor>& ln_c_b,
                                   const c10::optional<Tensor>& rec_mask, const c10::optional<Tensor>& keep_c,
                                   const c10::optional<Tensor>& keep_h, double keep_c_p, double keep_h_p,
                                   const c10::optional<Tensor>& lengths, bool reverse) {
  const int64_t T = gates.size(0), B = gates.size(1), G = gates.size(2), H = G / 4;
  const Options o = make_options(ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, keep_c_p, keep_h_p, lengths);
  const auto f32 = gates.options();
  Tensor dxproj = at::empty({T, B, G}, f32);  // d pre-activations
  Tensor dgh_all = o.ln_hh ? at::empty({T, B, G}, f32) : dxproj;  // gradient of the raw W_hh h_rec
  Tensor dh = dh_T.clone(), dc = dc_T.clone();  // carried gradients of the state, (B, H)
  Tensor dh_rec = at::empty({B, H}, f32);
  // per-block accumulators of the layer norms' gradients, summed at the end
  const int64_t blocks = std::max<int64_t>(1, at::get_num_threads());
  Tensor dln_hh_parts = o.ln_hh ? at::zeros({blocks, G}, f32) : at::empty({0}, f32);
  Tensor dln_cw_parts = o.ln_c_w ? at::zeros({blocks, H}, f32) : at::empty({0}, f32);
  Tensor dln_cb_parts = o.ln_c_w ? at::zeros({blocks, H}, f32) : at::empty({0}, f32);

  const float* w = w_hh.data_ptr<float>();
  const float* dyp = dy.data_ptr<float>();
  const float* gp_all = gates.data_ptr<float>();
  const float* cprev_all = c_prev_all.data_ptr<float>();
  const float* tc_all = tanh_c.data_ptr<float>();
  float* dpre_all = dxproj.data_ptr<float>();
  float* dgh_all_p = dgh_all.data_ptr<float>();
  float* dhp = dh.data_ptr<float>();
  float* dcp = dc.data_ptr<float>();
  float* dhrec = dh_rec.data_ptr<float>();

  const std::vector<float> keep_c_const(H, o.keep_c_p), keep_h_const(H, o.keep_h_p), ones(H, 1.f);

  for_row_blocks(B, T * B * G, [&](int64_t b0, int64_t b1, int64_t block) {
    float* dlnhh = o.ln_hh ? dln_hh_parts.data_ptr<float>() + block * G : nullptr;
    float* dlncw = o.ln_c_w ? dln_cw_parts.data_ptr<float>() + block * H : nullptr;
    float* dlncb = o.ln_c_w ? dln_cb_parts.data_ptr<float>() + block * H : nullptr;
    std::vector<float> dcn_buf(H), dcx_buf(H), dkeep_buf((b1 - b0) * H);
    float* dcn = dcn_buf.data();
    float* dkeep = dkeep_buf.data();  // gradient reaching h_prev straight through zoneout or padding
    for (int64_t k = T - 1; k >= 0; --k) {
      const int64_t t = reverse ? T - 1 - k : k;
      const int64_t tb = t * B;
      for (int64_t b = b0; b < b1; ++b) {
        float* dpre = dpre_all + (tb + b) * G;
        float* dgh = dgh_all_p + (tb + b) * G;
        float* dhr = dhp + b * H;
        float* dcr = dcp + b * H;
        float* dk = dkeep + (b - b0) * H;
        if (!is_valid(o, t, b)) {  // padding: the state's gradient passes through untouched
          for (int64_t j = 0; j < G; ++j) dpre[j] = dgh[j] = 0.f;
          for (int64_t j = 0; j < H; ++j) dk[j] = dhr[j];
          continue;
        }
        const float* gr = gp_all + (tb + b) * G;
        const float* cprev = cprev_all + (tb + b) * H;
        const float* dyr = dyp + (tb + b) * H;
        const float* kc = o.keep_c ? o.keep_c + (tb + b) * H : keep_c_const.data();
        const float* kh = o.keep_h ? o.keep_h + (tb + b) * H : keep_h_const.data();
        const float* tc = tc_all + (tb + b) * H;
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
          const float* chat = c_hat.data_ptr<float>() + (tb + b) * H;
          for (int64_t j = 0; j < H; ++j) dlncb[j] += dcn[j];
          normalise_backward(dcn, chat, o.ln_c_w, rstd_c.data_ptr<float>()[tb + b], H, dcx_buf.data(), dlncw);
          for (int64_t j = 0; j < H; ++j) dcn[j] = dcx_buf[j];
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
          const float* ghat = gh_hat.data_ptr<float>() + (tb + b) * G;
          normalise_backward(dpre, ghat, o.ln_hh, rstd_hh.data_ptr<float>()[tb + b], G, dgh, dlnhh);
        }
      }
      // d h_prev: back through W_hh and the recurrent-dropout mask, plus the straight-through part
      gemm_rows(dgh_all_p + (tb + b0) * G, b1 - b0, G, w, H, false, dhrec + b0 * H);
      for (int64_t b = b0; b < b1; ++b) {
        const float* dk = dkeep + (b - b0) * H;
        const float* m = o.rec_mask ? o.rec_mask + b * H : ones.data();
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dhp[b * H + j] = dhrec[b * H + j] * m[j] + dk[j];
      }
    }
  });
  // the weight gradient of the recurrent product, for all steps at once: (G, T*B) @ (T*B, H)
  Tensor dw_hh = at::mm(dgh_all.view({T * B, G}).t(), h_rec_all.view({T * B, H}));
  Tensor dln_hh = o.ln_hh ? dln_hh_parts.sum(0) : at::empty({0}, f32);
  Tensor dln_c_w = o.ln_c_w ? dln_cw_parts.sum(0) : at::empty({0}, f32);
  Tensor dln_c_b = o.ln_c_w ? dln_cb_parts.sum(0) : at::empty({0}, f32);
  return {dxproj, dh, dc, dw_hh, dln_hh, dln_c_w, dln_c_b};
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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "lstmkit's fused LSTM recurrence for the CPU";
  m.def("layer_forward", &layer_forward, "one LSTM layer and direction over a whole sequence");
  m.def("layer_backward", &layer_backward, "its backward");
  m.def("stack_step", &stack_step, "one step of a unidirectional stack, without autograd");
}
