// The gate maths of the fused LSTM: everything pointwise about one step, in float32 (the only precision it
// runs in; bfloat16 is used for the matrix products alone, lstm_matmul.h). The equations are core/step.py's
// lstm_step: the activations (sigmoid and tanh from one vectorisable exp each), the gates, the cell and output
// updates, zoneout's mix with the old state, the layer norm over a row and the derivatives the backward takes.
// Every loop over units in the layer forward and backward (lstm_layer.h) and in stepwise inference
// (lstm_inference.h) computes its gates through these functions, so the maths has this one home.
// Not here: the products that produce the pre-activations (lstm_matmul.h) and the loops over rows and steps
// that apply these (lstm_layer.h). Read lstm_buffers.h next. Included once, by fused_lstm.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

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

// The four gates of one unit, activated: input i, forget f, candidate g, output o.
struct GateValues {
  float i, f, g, o;
};
inline GateValues activate(float pre_i, float pre_f, float pre_g, float pre_o) {
  return {sigmoidf(pre_i), sigmoidf(pre_f), tanhf_fast(pre_g), sigmoidf(pre_o)};
}

// The new cell before zoneout, c_new = f c_prev + i g.
inline float new_cell(float i, float f, float g, float c_prev) { return f * c_prev + i * g; }

// The new output before zoneout, h_new = o tanh(arg), with arg the new cell or its layer norm.
inline float new_hidden(float o, float arg) { return o * tanhf_fast(arg); }

// Zoneout's mix of the old and the new value: keep is the per-unit mask in training (1 keeps the old value),
// the keep probability in evaluation, 0 without zoneout.
inline float zoneout(float keep, float old_value, float new_value) {
  return keep * old_value + (1.f - keep) * new_value;
}

// One unit's whole step without layer norms, from its four pre-activations: the new cell and output after
// zoneout with one keep value for both (stepwise inference).
struct CellOutput {
  float c, h;
};
inline CellOutput lstm_cell(float pre_i, float pre_f, float pre_g, float pre_o, float c_prev, float h_prev,
                            float keep) {
  const GateValues a = activate(pre_i, pre_f, pre_g, pre_o);
  const float c_fresh = new_cell(a.i, a.f, a.g, c_prev);
  const float h_fresh = new_hidden(a.o, c_fresh);
  return {zoneout(keep, c_prev, c_fresh), zoneout(keep, h_prev, h_fresh)};
}

// The backward through an activation, from its output: d s (1 - s) for s = sigmoid(x), d (1 - t^2) for
// t = tanh(x), where d is the gradient reaching the activation (the incoming one already times the other
// factor of the product the activation sits in, e.g. tanh(c) for the output gate).
inline float sigmoid_backward(float d, float s) { return d * s * (1.f - s); }
inline float tanh_backward(float d, float t) { return d * (1.f - t * t); }

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

}  // namespace
