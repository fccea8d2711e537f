// The fused LSTM on the CPU, and the module's bindings. The code lies in headers, one concern each, read in
// this order:
//   lstm_gates.h      the gate maths: activations, cell and output updates, zoneout, layer norm (float32)
//   lstm_buffers.h    scratch buffers and the pool of per-sequence buffers
//   lstm_matmul.h     the matrix kernels: register-blocked and tiled products, float32 and bfloat16
//   lstm_layer.h      one layer in one direction: the recurrence over time, forward and backward
//   lstm_stack.h      the unidirectional stack as one autograd node
//   lstm_inference.h  stepwise inference and sampling: stack_step, sample_chain
// They are included here, into this one translation unit, rather than compiled apart, so that the compiler
// sees all of the kernels together and inlines across them as it would in one file; each is included once,
// by this file. This file owns the bindings (and the argument checks of lstmkit.nn.Linear's two products);
// optim.cpp and random.cpp are compiled apart and bound here through their headers.

#include <torch/extension.h>

#include "lstm_gates.h"
#include "lstm_buffers.h"
#include "lstm_matmul.h"
#include "lstm_layer.h"
#include "lstm_stack.h"
#include "lstm_inference.h"
#include "optim.h"
#include "random.h"

// lstmkit.nn.Linear's products on float32 CPU matrices, by lstm_matmul.h's kernels: a @ b (any strides),
// and the gradient of a weight, d^T @ x.
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
