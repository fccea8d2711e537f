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

namespace {

bool dense_float32_cpu(const at::Tensor& t) {
  return t.defined() && t.layout() == at::kStrided && t.device().is_cpu() && t.scalar_type() == at::kFloat &&
         t.is_contiguous();
}

}  // namespace

// Declines (returns false, changing nothing) unless every tensor is a dense, contiguous float32 CPU tensor
// of its parameter's size and every step a float32 scalar; the caller then takes torch's own step.
bool adam_step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
               const std::vector<at::Tensor>& exp_avgs, const std::vector<at::Tensor>& exp_avg_sqs,
               const std::vector<at::Tensor>& steps, const std::vector<AdamGroup>& groups) {
  const size_t n_params = params.size();
  TORCH_CHECK(grads.size() == n_params && exp_avgs.size() == n_params && exp_avg_sqs.size() == n_params &&
                  steps.size() == n_params,
              "adam_step: one gradient, state pair and step per parameter");
  int64_t counted = 0;
  for (const AdamGroup& group : groups) counted += std::get<0>(group);
  TORCH_CHECK(counted == static_cast<int64_t>(n_params), "adam_step: the groups' counts must add up");
  for (size_t k = 0; k < n_params; ++k) {
    const int64_t n = params[k].numel();
    for (const at::Tensor* t : {&params[k], &grads[k], &exp_avgs[k], &exp_avg_sqs[k]}) {
      if (!dense_float32_cpu(*t) || t->numel() != n) return false;
    }
    if (!dense_float32_cpu(steps[k]) || steps[k].numel() != 1) return false;
  }
  size_t k = 0;
  for (const AdamGroup& group : groups) {
    const auto [count, lr, beta1, beta2, eps, weight_decay, decoupled] = group;
    const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2), e = static_cast<float>(eps);
    const float decay = decoupled ? 0.f : static_cast<float>(weight_decay);
    const float shrink = decoupled ? static_cast<float>(1.0 - lr * weight_decay) : 1.f;
    for (const size_t end = k + count; k < end; ++k) {
      const int64_t n = params[k].numel();
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
  return true;
}
