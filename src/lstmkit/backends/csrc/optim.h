// The optimiser steps compiled alongside the fused LSTM (optim.cpp), for the module's bindings.
#pragma once

#include <torch/extension.h>

#include <tuple>
#include <vector>

// One parameter group's share of an Adam step: how many of the tensors handed over are its (they come in
// group order), then lr, beta1, beta2, eps, weight_decay and whether the decay is decoupled (AdamW).
using AdamGroup = std::tuple<int64_t, double, double, double, double, double, bool>;

bool adam_step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
               const std::vector<at::Tensor>& exp_avgs, const std::vector<at::Tensor>& exp_avg_sqs,
               const std::vector<at::Tensor>& steps, const std::vector<AdamGroup>& groups);
