"""Character-level text generation: wiring of a text file, a character vocabulary, a LanguageModel, the
engine, and a sampler that carries the recurrent state from one character to the next."""

import dataclasses
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig, RunConfig, TextDataConfig, TrainConfig
from ..data import Batch, CharVocab, LMWindows, lm_streams, locate, read_text, split_tail
from ..errors import LstmkitError
from ..eval import language_model_metrics
from ..models import LanguageModel, build_language_model
from ..nn import detach
from ..train.runs import read_json
from ..utils.seed import set_seed
from .base import Example, Task, TextView, fit_run

STREAM_CHUNK = 64  # characters generated per call into the model while streaming

TASK = "textgen"
EVAL_STREAMS = 8  # contiguous validation streams evaluated side by side, state carried along each

_log = logging.getLogger(__name__)


def default_config() -> RunConfig:
    """The defaults: a 2 x 256 LSTM on windows of 100 characters, which trains on Macbeth in minutes on a CPU."""
    return RunConfig(
        task=TASK,
        data=TextDataConfig(seq_len=100, val_fraction=0.1),
        model=ModelConfig(embed_dim=64, hidden_size=256, num_layers=2, dropout=0.2),
        train=TrainConfig(epochs=40, batch_size=32, lr=3e-3, patience=4, lr_schedule="cosine"),
    )


class CharLMObjective:
    """Next-character cross-entropy; validation carries the state along contiguous streams."""

    def __init__(self, vocab: CharVocab, seq_len: int) -> None:
        self.vocab, self.seq_len = vocab, seq_len

    def outputs(self, model: nn.Module, batch: Batch) -> Tensor:
        return model(batch.inputs)[0]                                    # (B, T, V)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten(), ignore_index=self.vocab.unk_id)

    def items(self, batch: Batch) -> int:
        return batch.targets.numel()

    def evaluate(self, model: nn.Module, ids: Tensor, device: torch.device) -> dict[str, float]:
        """Loss in nats per character, perplexity and bits per character over the held-out ids (characters
        unseen in training are not scored)."""
        total, count, state = 0.0, 0, None
        streams = max(1, min(EVAL_STREAMS, (len(ids) - 1) // self.seq_len))
        for batch in lm_streams(ids, streams, self.seq_len):
            batch = batch.to(device)
            logits, state = model(batch.inputs, state)                   # (B, T, V)
            state = detach(state)
            scored = batch.targets != self.vocab.unk_id
            nll = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="none")
            total += float(nll[scored.flatten()].sum())
            count += int(scored.sum())
        return language_model_metrics(total, max(1, count))


@dataclasses.dataclass
class PreparedText:
    vocab: CharVocab
    train_ids: Tensor
    val_ids: Tensor
    text_sha256: str


def prepare_text(config: TextDataConfig) -> PreparedText:
    """Reads the text, splits off the validation tail, and fits the vocabulary on the training part."""
    text = read_text(locate(config.data) if config.data else config.text)
    train_text, val_text = split_tail(text, config.val_fraction)
    vocab = CharVocab.fit(train_text, config.lowercase)
    if len(train_text) < config.seq_len + 1:
        raise LstmkitError(
            f"text too short: its training part has {len(train_text)} characters and one training window needs "
            f"seq_len + 1 = {config.seq_len + 1}; use a longer text or a smaller --seq-len"
        )
    if len(val_text) < 2:
        raise LstmkitError(f"text too short: its validation tail has {len(val_text)} character(s), need at least 2")
    unknown = vocab.unknown(val_text)
    if unknown:
        _log.info("validation text has %d character(s) unseen in training, not scored: %r",
                  len(unknown), "".join(unknown))
    digest = hashlib.sha256(text.encode()).hexdigest()
    return PreparedText(vocab, vocab.encode(train_text), vocab.encode(val_text), digest)


class TextGenerationTask(Task):
    """``textgen``: a character-level language model of one text file."""

    name = TASK
    help = "character-level text generation"
    fitted_files = ("vocab",)
    unused = frozenset({"pooling", "bidirectional"})

    def default_config(self) -> RunConfig:
        return default_config()

    def build_model(self, config: RunConfig, fitted: dict[str, Any]) -> nn.Module:
        return build_language_model(config.model, len(CharVocab.from_json(fitted["vocab"])))

    def fit(self, config: RunConfig, out: Path, resume: bool) -> "TextGenerator":
        prepared = prepare_text(config.data)
        if resume:
            if read_json(out / "vocab.json", "vocab.json").get("text_sha256") != prepared.text_sha256:
                raise LstmkitError(f"the text {config.data.text or config.data.data} changed since the run "
                                   "started; cannot resume")
        else:
            set_seed(config.train.seed, config.train.deterministic)
        fitted = {"vocab": {**prepared.vocab.to_json(), "text_sha256": prepared.text_sha256}}
        model = self.build_model(config, fitted)
        objective = CharLMObjective(prepared.vocab, config.data.seq_len)
        windows = LMWindows(prepared.train_ids, config.data.seq_len, config.train.batch_size)
        result = fit_run(out, config, fitted, model, objective, windows, prepared.val_ids, restore=resume)
        return TextGenerator(model.cpu().eval(), prepared.vocab, config, result.metrics, out)

    def predictor(self, model: nn.Module, config: RunConfig, fitted: dict[str, Any], metrics: dict,
                  path: Path) -> "TextGenerator":
        return TextGenerator(model, CharVocab.from_json(fitted["vocab"]), config, metrics, path)

    def example(self, folder: Path) -> Example:
        words = "the king and the queen walk to the castle at night while the wind blows over the hill "
        path = Path(folder) / "tiny.txt"
        path.write_text("".join(f"{words}{k % 7}\n" for k in range(40)))
        tiny = {"text": str(path), "seq_len": 20, "hidden_size": 16, "embed_dim": 8, "num_layers": 1,
                "batch_size": 8, "epochs": 3, "max_steps": 12, "quiet": True}
        return Example(tiny, ("the ",), {**tiny, "seq_len": 0}, "seq_len must be at least 1")

    def text_view(self, predictor: "TextGenerator") -> TextView:
        model, vocab = predictor.model, predictor.vocab

        def to_inputs(text: str) -> Tensor:
            unknown = vocab.unknown(text)
            if unknown:
                _log.warning("%d character(s) unseen in training read as 'unknown': %r", len(unknown),
                             "".join(unknown))
            return model.encoder.embedding(vocab.encode(text)[None])   # (1, T, E)

        return TextView(model.encoder.rnn, lambda text: list(vocab.prepare(text)), to_inputs)


TEXTGEN = TextGenerationTask()


def train(
    text: str | Path | None = None,
    *,
    out: str | Path,
    data: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    **settings: Any,
) -> "TextGenerator":
    """Trains a character-level model and writes its run folder.

    Args:
        text: path of a UTF-8 text file; or
        data: the name of a registered dataset (``lstmkit data list``), e.g. "macbeth".
        out: the run folder to create (refused if it exists, unless ``overwrite``).
        overwrite: replace an existing run folder (only once the new run has something to save).
        resume: continue the run in ``out`` from its checkpoint; settings equal to the saved ones are
            accepted, ``epochs``, ``max_steps`` and ``max_time`` may change (unset, they keep their values).
        **settings: any field of TextDataConfig, ModelConfig or TrainConfig (seq_len, hidden_size, lr, ...).

    Returns:
        A TextGenerator holding the trained model.
    """
    sources = {"text": str(text) if text is not None else None, "data": data}
    return TEXTGEN.train(out=out, overwrite=overwrite, resume=resume, **sources, **settings)


class TextGenerator:
    """A trained character model, ready to sample. Build with ``train(...)`` or ``load(folder)``."""

    def __init__(self, model: LanguageModel, vocab: CharVocab, config: RunConfig, metrics: dict, path: Path) -> None:
        self.model, self.vocab, self.config, self.metrics, self.path = model, vocab, config, metrics, path

    def _check(self, prime: str, temperature: float, top_k: int | None, length: int) -> None:
        unknown = self.vocab.unknown(prime)
        if unknown:
            names = ", ".join(repr(ch) for ch in unknown)
            raise LstmkitError(f"the prime text has characters the model never saw in training: {names}")
        if temperature < 0:
            raise LstmkitError(f"temperature must be 0 (greedy) or positive, got {temperature}")
        if top_k is not None and not 1 <= top_k <= len(self.vocab.chars):
            raise LstmkitError(f"top_k must be between 1 and the vocabulary size {len(self.vocab.chars)}, got {top_k}")
        if length < 0:
            raise LstmkitError(f"length must be 0 or more, got {length}")

    @torch.no_grad()
    def stream(
        self, prime: str | None = None, length: int = 500, temperature: float = 1.0, top_k: int | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yields ``length`` generated characters one at a time, continuing ``prime``.

        The prime (default: a line break) is read in one call; then each character is fed back with the
        state carried. Temperature 0 is greedy argmax; ``top_k`` keeps the k likeliest characters.
        """
        prime = prime or ("\n" if "\n" in self.vocab.chars else self.vocab.chars[0])
        self._check(prime, temperature, top_k, length)
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        uniforms = torch.rand(length, generator=generator)  # one per character: the seed fixes the text
        self.model.eval()
        logits, state = self.model(self.vocab.encode(prime)[None])  # (1, T, V)
        logits = logits[0, -1]
        for start in range(0, length, STREAM_CHUNK):
            chunk = uniforms[start : start + STREAM_CHUNK]
            ids, state, logits = self.model.generate(logits, state, chunk, temperature, top_k, self.vocab.unk_id)
            for k in ids.tolist():
                yield self.vocab.chars[k]

    def sample(
        self, prime: str | None = None, length: int = 500, temperature: float = 1.0, top_k: int | None = None,
        seed: int | None = None,
    ) -> str:
        """The generated continuation of ``prime`` as one string (see ``stream``)."""
        return "".join(self.stream(prime, length, temperature, top_k, seed))

    def predict(self, prime: str | None = None, length: int = 100, temperature: float = 1.0,
                top_k: int | None = None, seed: int | None = 0) -> str:
        """``sample`` with a fixed seed by default: the same prime gives the same text."""
        return self.sample(prime, length, temperature, top_k, seed)


def load(folder: str | Path) -> "TextGenerator":
    """Loads a text-generation run folder (config.json, vocab.json, model.safetensors); no pickle involved."""
    return TEXTGEN.load(folder)
