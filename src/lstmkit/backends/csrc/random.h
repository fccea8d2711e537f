// The masks' random draws compiled alongside the fused LSTM (random.cpp), for the module's bindings.
#pragma once

#include <torch/extension.h>

at::Tensor bernoulli_mask(int64_t n, int64_t threshold, double scale, int64_t key0, int64_t key1);
