// The optimiser steps compiled alongside the fused LSTM (optim.cpp), for the module's bindings.
#pragma once

#include <torch/extension.h>

#include <vector>

void adam_step(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
               const std::vector<at::Tensor>& exp_avgs, const std::vector<at::Tensor>& exp_avg_sqs,
               const std::vector<at::Tensor>& steps, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled_weight_decay);
