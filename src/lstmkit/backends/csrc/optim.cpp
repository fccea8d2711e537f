// Adam (and AdamW) for CPU float32 parameters: one call updates them all. torch's own fused Adam runs each
// parameter as a parallel region of its own, and its Python wrapper does per-tensor bookkeeping; on the
// small models trained on CPUs those costs exceed the arithmetic (a few thousand weights). Here small
// tensors run on the calling thread and only large ones are split across threads.
//
// The update is torch.optim.Adam's (Kingma and Ba, 2015, with its bias corrections): per element, with g
// the gradient plus weight_decay * p (or, decoupled as AdamW, p scaled by 1 - lr * weight_decay first),
//   m <- m + (1 - beta1) (g - m);  v <- beta2 v + (1 - beta2) g^2
//   p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// where t, the tensor "step", is incremented first.

#include "optim.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/variable.h>

#include <cmath>

namespace {

constexpr int64_t kParallelFrom = 1 << 16;  // elements; below this a tensor stays on one thread
constexpr int64_t kGrain = 1 << 14;

}  // namespace

void adam_step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
               const std::vector<at::Tensor>& exp_avgs, const std::vector<at::Tensor>& exp_avg_sqs,
               const std::vector<at::Tensor>& steps, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled_weight_decay) {
  const size_t n_params = params.size();
  TORCH_CHECK(grads.size() == n_params && exp_avgs.size() == n_params && exp_avg_sqs.size() == n_params &&
                  steps.size() == n_params,
              "adam_step: one gradient, state pair and step per parameter");
  const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2), e = static_cast<float>(eps);
  const float decay = decoupled_weight_decay ? 0.f : static_cast<float>(weight_decay);
  const float shrink = decoupled_weight_decay ? static_cast<float>(1.0 - lr * weight_decay) : 1.f;
  for (size_t k = 0; k < n_params; ++k) {
    const int64_t n = params[k].numel();
    for (const at::Tensor* t : {&params[k], &grads[k], &exp_avgs[k], &exp_avg_sqs[k]}) {
      TORCH_CHECK(t->scalar_type() == at::kFloat && t->is_contiguous() && t->numel() == n && t->device().is_cpu(),
                  "adam_step: contiguous float32 CPU tensors of the parameter's size");
    }
    TORCH_CHECK(steps[k].scalar_type() == at::kFloat && steps[k].numel() == 1, "adam_step: a float32 step");
    float* step = steps[k].data_ptr<float>();
    *step += 1.f;
    const double t = *step;
    const float step_size = static_cast<float>(lr / (1.0 - std::pow(beta1, t)));
    const float inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(beta2, t)));
    float* p = params[k].data_ptr<float>();
    const float* g = grads[k].data_ptr<float>();
    float* m = exp_avgs[k].data_ptr<float>();
    float* v = exp_avg_sqs[k].data_ptr<float>();
    auto update = [&](int64_t i0, int64_t i1) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) {
        const float pi = p[i] * shrink;
        const float gi = g[i] + decay * pi;
        const float mi = m[i] + (1.f - b1) * (gi - m[i]);
        const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * mi / (std::sqrt(vi) * inv_bc2_sqrt + e);
      }
    };
    if (n >= kParallelFrom) {
      at::parallel_for(0, n, kGrain, update);
    } else {
      update(0, n);
    }
    torch::autograd::impl::bump_version(params[k]);  // changed in place: autograd must see it
  }
}
