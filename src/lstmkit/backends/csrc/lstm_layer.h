// One LSTM layer in one direction over a whole sequence, forward (layer_forward_tm, layer_forward) and
// backward (layer_backward): the recurrence over time. Per step, the recurrent product h_rec @ W_hh^T (by
// the register-blocked kernels of lstm_matmul.h, in float32 or bfloat16), then one pass over memory for the
// gate maths (lstm_gates.h), the cell update, the optional layer norms and zoneout, and the padding mask. The
// input projection and the weight gradients are one matrix product each over all steps for larger layers,
// and run step by step inside the time loop for small ones (Path says which and why). Sequences are handed
// over batch first and worked on time-major. Shapes: T steps, B batch, I inputs, H units, G = 4H (gates i,
// f, g, o).
// Not here: the kernels themselves (lstm_matmul.h), the pointwise equations (lstm_gates.h), the stack of
// layers as one autograd node (lstm_stack.h, the file to read next). Included once, by fused_lstm.cpp.
#pragma once

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "lstm_buffers.h"
#include "lstm_gates.h"
#include "lstm_matmul.h"

namespace {

using at::Tensor;

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

// Which path a layer takes. Small layers (both weight matrices within kSmallGemm) run every product with
// small_gemm inside the time loop, the input projection and the weight gradients included, while each step's
// rows are in cache: for such skinny products (a 16-input projection, say) the BLAS reaches a fraction of its
// speed, and the full-sequence buffers it needs are never written.
// Larger layers project all steps at once and take the weight gradients as one matrix product each
// (tiled_gemm); under bf16 autocast those products and the recurrent one run in bfloat16. Small layers stay
// float32 then too: bfloat16 gained them nothing measurable (benchmarks/README.md has the figures), and the
// in-loop path is faster.
// A forward that keeps nothing for a backward (inference) in float32 with at least kInferenceRows rows a
// thread projects the input step by step as well, whatever the layer's size: the all-step pre-activations
// (T x B x 4H floats, tens of megabytes for a large batch) are then neither written out nor read back. Below
// kInferenceRows rows a thread the all-step projection stays faster: each step would read all of W_ih for
// too few rows.
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
          const GateValues a = activate(pre[j] + xr[j], pre[H + j] + xr[H + j], pre[2 * H + j] + xr[2 * H + j],
                                        pre[3 * H + j] + xr[3 * H + j]);
          gr[j] = a.i;
          gr[H + j] = a.f;
          gr[2 * H + j] = a.g;
          gr[3 * H + j] = a.o;
          ca[j] = new_cell(a.i, a.f, a.g, cr[j]);
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
          const float h_new = new_hidden(gr[3 * H + j], arg[j]);
          const float c_new = ca[j];
          const float h_out = zoneout(kh[j], hr[j], h_new);
          const float c_out = zoneout(kc[j], cr[j], c_new);
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
          for (int64_t j = 0; j < H; ++j) tc[j] = tanhf_fast(new_cell(gr[j], gr[H + j], gr[2 * H + j], cprev[j]));
        }
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {  // through h = z h_prev + (1 - z) o tanh(LN(c_new))
          const float dh_tot = dhr[j] + dyr[j];
          const float zh = kh[j];
          const float dh_new = (1.f - zh) * dh_tot;
          dk[j] = zh * dh_tot;
          const float og = gr[3 * H + j];
          dpre[3 * H + j] = sigmoid_backward(dh_new * tc[j], og);  // d pre_o
          dcn[j] = tanh_backward(dh_new * og, tc[j]);              // d of tanh's argument
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
          dpre[j] = sigmoid_backward(dc_new * g, i);              // d pre_i
          dpre[H + j] = sigmoid_backward(dc_new * cprev[j], f);   // d pre_f
          dpre[2 * H + j] = tanh_backward(dc_new * i, g);         // d pre_g
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
