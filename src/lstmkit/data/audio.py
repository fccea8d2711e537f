"""Audio in: reading PCM WAV files, resampling, and the features computed from them on the fly (log-mel
energies and MFCCs over a short-time Fourier transform, per-utterance normalisation, SpecAugment masks).
Which recordings make a corpus and how they are split lives in data/speech.py.

WAV files are read with the standard library's ``wave``: it reads the PCM WAV that speech corpora ship (8-, 16-,
24- and 32-bit integer samples), needs no native library, and refuses everything else with an error we turn into
one line. Resampling is scipy's polyphase filter (``resample_poly``). The mel scale and the filterbank's area
normalisation are Slaney's (the Auditory Toolbox), as librosa's defaults, so the features equal librosa's
``melspectrogram`` / ``power_to_db`` / ``mfcc`` on the same settings (tests/data/test_audio.py checks it).

Shape legend: N samples, T frames, M mel bands (or MFCCs: the feature axis), K = n_fft // 2 + 1 frequency bins.
"""

import io
import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import LstmkitError

CLIPPED_SHARE = 0.01    # a recording with more of its samples at full scale than this is refused as clipped
SILENT_PEAK = 1e-4      # ... and one whose peak stays below this (-80 dBFS) as silent
AMIN = 1e-10            # floor of the power before the logarithm (librosa's amin)


def read_wav(source: str | Path | bytes, name: str | None = None) -> tuple[np.ndarray, int]:
    """A mono PCM WAV file (a path, or its bytes with ``name`` for messages) -> float32 samples in [-1, 1]
    (N,) and the sample rate. Refuses, in one line: a file that is not a WAV, an empty one, more than one
    channel, no samples, a clipped recording (over 1% of samples at full scale) and a silent one."""
    name = name or str(source)
    raw = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
    if not raw:
        raise LstmkitError(f"{name} is empty (0 bytes); expected a WAV file")
    try:
        with wave.open(io.BytesIO(raw)) as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            data = w.readframes(frames)
    except (wave.Error, EOFError) as err:
        raise LstmkitError(f"{name} is not a PCM WAV file ({err})") from None
    if channels != 1:
        raise LstmkitError(f"{name} has {channels} channels; expected 1 (mono)")
    if width not in (1, 2, 3, 4):
        raise LstmkitError(f"{name} has {8 * width}-bit samples; expected 8, 16, 24 or 32")
    if frames == 0 or not data:
        raise LstmkitError(f"{name} holds 0 samples; expected a recording")
    samples = _pcm_to_float(data, width)
    peak = float(np.abs(samples).max())
    if peak < SILENT_PEAK:
        raise LstmkitError(f"{name} is silent (peak amplitude {peak:.2g}); expected a recording")
    clipped = float((np.abs(samples) >= 1.0 - 2.0 ** (1 - 8 * width)).mean())
    if clipped > CLIPPED_SHARE:
        raise LstmkitError(f"{name} is clipped: {100 * clipped:.1f}% of its samples are at full scale "
                           f"(at most {100 * CLIPPED_SHARE:g}% accepted)")
    return samples, rate


def _pcm_to_float(data: bytes, width: int) -> np.ndarray:
    """Little-endian PCM bytes -> float32 in [-1, 1): 8-bit is unsigned, wider is signed."""
    if width == 1:
        return (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 3:
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        values = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8      # sign-extended 24-bit
        return values.astype(np.float32) / 2.0**23
    kind = {2: "<i2", 4: "<i4"}[width]
    return np.frombuffer(data, kind).astype(np.float32) / 2.0 ** (8 * width - 1)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling (scipy's Kaiser-windowed FIR) from ``rate`` to ``target`` Hz:
    (N,) -> (N * target / rate,)."""
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    return resample_poly(samples, target // g, rate // g).astype(np.float32)


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27 mels per factor 6.4)."""
    f = np.asarray(f, dtype=np.float64)
    log_start, step = 1000.0 / (200.0 / 3), math.log(6.4) / 27.0
    return np.where(f < 1000.0, f / (200.0 / 3), log_start + np.log(np.maximum(f, 1e-10) / 1000.0) / step)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    log_start, step = 1000.0 / (200.0 / 3), math.log(6.4) / 27.0
    return np.where(m < log_start, m * (200.0 / 3), 1000.0 * np.exp(step * (m - log_start)))


def mel_filterbank(rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """(M, K) triangular filters at centres equally spaced on Slaney's mel scale between fmin and fmax
    (default rate / 2), each scaled to unit area (2 / bandwidth in Hz), as librosa.filters.mel's defaults."""
    fmax = rate / 2 if fmax is None else fmax
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)                              # (K,)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))  # (M + 2,)
    widths = np.diff(edges)                                                       # (M + 1,)
    ramps = edges[:, None] - bins[None, :]                                        # (M + 2, K)
    lower = -ramps[:-2] / widths[:-1, None]                                       # (M, K)
    upper = ramps[2:] / widths[1:, None]                                          # (M, K)
    weights = np.maximum(0, np.minimum(lower, upper))                             # (M, K)
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) orthonormal DCT-II, the transform from log-mel energies to cepstral coefficients."""
    k, n = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
    basis = np.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)       # (n_out, n_in)
    basis[0] /= math.sqrt(2.0)
    return basis.astype(np.float32)


@dataclass(frozen=True)
class FeatureSpec:
    """How a recording becomes features: every recording is resampled to ``rate``; frames of ``win`` samples
    (Hann window, zero-padded to ``n_fft``, centred) every ``hop`` samples; ``n_mels`` Slaney mel bands;
    ``n_mfcc`` cepstral coefficients when ``kind`` is "mfcc"."""

    rate: int = 8000
    kind: str = "logmel"
    n_mels: int = 40
    n_mfcc: int = 20
    win_ms: float = 25.0
    hop_ms: float = 10.0

    @property
    def win(self) -> int:
        return round(self.rate * self.win_ms / 1000)

    @property
    def hop(self) -> int:
        return round(self.rate * self.hop_ms / 1000)

    @property
    def n_fft(self) -> int:
        return 1 << (self.win - 1).bit_length()

    @property
    def size(self) -> int:
        """Features per frame (M)."""
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels


class Featurizer:
    """Computes a FeatureSpec's features from samples; the filterbank and DCT are built once."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.filters = torch.from_numpy(mel_filterbank(spec.rate, spec.n_fft, spec.n_mels))       # (M, K)
        self.dct = torch.from_numpy(dct_matrix(spec.n_mels, spec.n_mfcc))                         # (n_mfcc, M)
        self.window = torch.hann_window(spec.win, periodic=True)                                  # (win,)

    def power(self, samples: np.ndarray) -> Tensor:
        """|STFT|^2, (N,) -> (T, K), T = 1 + N // hop (centred frames, zero padding at both ends)."""
        x = torch.as_tensor(samples, dtype=torch.float32)                                          # (N,)
        spec = torch.stft(x, self.spec.n_fft, self.spec.hop, self.spec.win, self.window, center=True,
                          pad_mode="constant", return_complex=True)                                # (K, T)
        return spec.abs().square().T                                                               # (T, K)

    def log_mel(self, samples: np.ndarray) -> Tensor:
        """Mel energies in decibels, 10 log10(max(S, 1e-10)): (N,) -> (T, M)."""
        mel = self.power(samples) @ self.filters.T                                                  # (T, M)
        return 10.0 * torch.log10(mel.clamp_min(AMIN))                                              # (T, M)

    def raw(self, samples: np.ndarray) -> Tensor:
        """The unnormalised features: log-mel (T, M) or MFCC (T, n_mfcc)."""
        log_mel = self.log_mel(samples)                                                              # (T, M)
        return log_mel @ self.dct.T if self.spec.kind == "mfcc" else log_mel                         # (T, M')

    def __call__(self, samples: np.ndarray, rate: int) -> Tensor:
        """Samples at ``rate`` -> normalised features (T, M'): resampled to the spec's rate, then each
        feature shifted and scaled to zero mean and unit variance over the utterance's frames."""
        return normalize(self.raw(resample(samples, rate, self.spec.rate)))


def normalize(features: Tensor) -> Tensor:
    """Per-utterance mean and variance normalisation of each feature over time: (T, M) -> (T, M)."""
    mean = features.mean(dim=0, keepdim=True)                                  # (1, M)
    std = features.std(dim=0, unbiased=False, keepdim=True)                    # (1, M)
    return (features - mean) / (std + 1e-5)                                    # (T, M)


def spec_augment(features: Tensor, length: int, generator: torch.Generator, time_masks: int, time_width: int,
                 freq_masks: int, freq_width: int) -> Tensor:
    """SpecAugment's masking (Park et al., 2019), without time warping: ``time_masks`` runs of up to
    ``time_width`` frames and ``freq_masks`` bands of up to ``freq_width`` features set to 0 (the mean, after
    normalisation), positions drawn from ``generator``; only the first ``length`` frames are masked.
    (T, M) -> a masked copy (T, M)."""
    out = features.clone()
    size = features.shape[1]
    for _ in range(time_masks):
        width = int(torch.randint(0, min(time_width, length) + 1, (1,), generator=generator))
        start = int(torch.randint(0, length - width + 1, (1,), generator=generator))
        out[start : start + width] = 0.0
    for _ in range(freq_masks):
        width = int(torch.randint(0, min(freq_width, size) + 1, (1,), generator=generator))
        start = int(torch.randint(0, size - width + 1, (1,), generator=generator))
        out[:, start : start + width] = 0.0
    return out
