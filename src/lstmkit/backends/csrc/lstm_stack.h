// The whole unidirectional stack as one autograd node (StackFunction, bound as stack_forward): its forward
// and its backward loop over the layers in C++, calling lstm_layer.h's layer_forward_tm and layer_backward.
// Not here: the recurrence within a layer (lstm_layer.h); stepwise inference without autograd
// (lstm_inference.h, the file to read next). Included once, by fused_lstm.cpp.
#pragma once

#include <torch/extension.h>

#include <vector>

#include "lstm_layer.h"

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
      at::AutoDispatchBelowADInplaceOrView below_autograd;  // see the note before layer_forward_tm (lstm_layer.h)
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
    return {top_tm.transpose(0, 1), h_n, c_n};  // y (B, T, H): a view autograd tracks (layer_forward_tm's note)
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const int64_t L = ctx->saved_data["layers"].toInt();
    const bool bias = ctx->saved_data["bias"].toBool(), layer_norm = ctx->saved_data["layer_norm"].toBool();
    const bool bf16 = ctx->saved_data["bf16"].toBool();
    const std::vector<Tensor> saved = ctx->get_saved_variables();
    at::AutoDispatchBelowADInplaceOrView below_autograd;  // see the note before layer_forward_tm (lstm_layer.h)
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
