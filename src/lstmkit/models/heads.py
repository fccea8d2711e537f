"""Task heads that sit on top of the SequenceEncoder's outputs."""

from torch import Tensor, nn

from ..nn import Linear


class LMHead(nn.Module):
    """Next-token logits from every step's output: dropout, then a linear map to the vocabulary."""

    def __init__(self, input_size: int, vocab_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.decoder = Linear(input_size, vocab_size)

    def forward(self, y: Tensor) -> Tensor:
        return self.decoder(self.dropout(y))  # (B, T, V)
