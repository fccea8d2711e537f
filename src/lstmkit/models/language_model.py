"""LanguageModel: SequenceEncoder + LMHead, for character- and word-level modelling and generation."""

from torch import Tensor, nn

from ..config import ModelConfig
from ..nn import LSTM, State, sampling
from .encoder import SequenceEncoder
from .heads import LMHead


class LanguageModel(nn.Module):
    """``forward(ids (B, T), state=None) -> (logits (B, T, V), state)``; the state carries across calls."""

    def __init__(self, encoder: SequenceEncoder, head: LMHead) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        y, state = self.encoder(ids, state)   # (B, T, D*H)
        return self.head(y), state            # (B, T, V)

    def step(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One token per sequence, for generation: ids (B,) -> (logits (B, V), state)."""
        h, state = self.encoder.step(ids, state)  # (B, D*H)
        return self.head(h), state

    def generate(
        self, logits: Tensor, state: State | None, uniforms: Tensor, temperature: float = 1.0,
        top_k: int | None = None, banned: int | None = None,
    ) -> tuple[Tensor, State | None, Tensor]:
        """Generates len(uniforms) tokens at batch 1, continuing from logits (V,) and the state that gave
        them; see nn.sampling for the rule. Returns the ids (n,), the state after them and the next logits."""
        rnn, embedding = self.encoder.rnn, self.encoder.embedding
        if isinstance(rnn, LSTM) and embedding is not None and not rnn.spec.bidirectional:
            decoder = self.head.decoder
            return sampling.generate(rnn, embedding, decoder, logits, state, uniforms, temperature, top_k, banned)
        return sampling.loop(self.step, logits, state, uniforms, temperature, top_k, banned)


def build_language_model(config: ModelConfig, vocab_size: int) -> LanguageModel:
    encoder = SequenceEncoder(config, vocab_size=vocab_size)
    return LanguageModel(encoder, LMHead(encoder.output_size, vocab_size, config.dropout))
