"""Linear: torch.nn.Linear, with its float32 CPU products on lstmkit's matrix kernel where that is faster.

The same parameters, initialisation, state_dict and results as torch.nn.Linear (it is one); only who does
the arithmetic differs, and only where backends.dense.applies says so (large float32 products on the CPU,
outside autocast). The language models' decoder uses it: there it is as large a product as the LSTM.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from ..backends import dense


class Linear(nn.Linear):
    def forward(self, x: Tensor) -> Tensor:  # (..., in) -> (..., out)
        if dense.applies(x, self.weight):
            return dense.linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)
