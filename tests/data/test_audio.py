"""Audio in: WAV reading and its one-line refusals, resampling, and the features, checked against librosa on a
real FSDD recording and against hand-checkable cases."""

import io
import math
import tarfile
import wave

import numpy as np
import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.data.audio import (
    FeatureSpec,
    Featurizer,
    dct_matrix,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
    normalize,
    read_wav,
    resample,
    spec_augment,
)
from lstmkit.data.registry import find_local
from lstmkit.data.speech import read_folder


def wav_bytes(samples: np.ndarray, rate: int = 8000, channels: int = 1, width: int = 2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 1:
            w.writeframes((np.clip(samples, -1, 1 - 1 / 128) * 128 + 128).astype(np.uint8).tobytes())
        elif width == 3:
            ints = np.round(samples * 2**23).astype(np.int32)
            w.writeframes(np.stack([ints & 255, (ints >> 8) & 255, (ints >> 16) & 255], 1).astype(np.uint8).tobytes())
        else:
            kind, scale = {2: ("<i2", 2**15), 4: ("<i4", 2**31)}[width]
            w.writeframes(np.round(samples * scale).astype(kind).tobytes())
    return out.getvalue()


def tone(freq: float = 440.0, rate: int = 8000, seconds: float = 0.25, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * math.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_read_wav_reads_every_pcm_width_to_the_same_samples(width):
    x = tone()
    got, rate = read_wav(wav_bytes(x, width=width), "tone.wav")
    assert rate == 8000 and got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, x, atol=2.0 / 2 ** (8 * width - 1) + 1e-7)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "x.wav is empty (0 bytes); expected a WAV file"),
        (b"hello, this is text and not audio", "x.wav is not a PCM WAV file (file does not start with RIFF id)"),
        (wav_bytes(np.zeros((100, 2)).ravel(), channels=2), "x.wav has 2 channels; expected 1 (mono)"),
        (wav_bytes(np.zeros(0)), "x.wav holds 0 samples; expected a recording"),
        (wav_bytes(np.zeros(800)), "x.wav is silent (peak amplitude 0); expected a recording"),
        (wav_bytes(np.clip(3 * tone(), -1, 32767 / 32768)),
         "x.wav is clipped: 53.0% of its samples are at full scale (at most 1% accepted)"),
    ],
    ids=["empty", "not-wav", "stereo", "no-samples", "silent", "clipped"],
)
def test_bad_audio_is_refused_in_one_line(raw, message):
    with pytest.raises(LstmkitError) as err:
        read_wav(raw, "x.wav")
    assert str(err.value) == message


def test_a_folder_without_audio_is_refused(tmp_path):
    (tmp_path / "yes").mkdir()
    (tmp_path / "yes" / "notes.txt").write_text("no audio here")
    with pytest.raises(LstmkitError) as err:
        read_folder(tmp_path)
    assert str(err.value) == f"no .wav files in {tmp_path}; expected one sub-folder of .wav files per label"


def test_slaney_mel_scale_by_hand():
    # linear below 1 kHz: 200/3 Hz per mel; 1 kHz is mel 15; 27 mels per factor 6.4 above
    np.testing.assert_allclose(hz_to_mel(np.array([0.0, 200.0 / 3, 1000.0, 6400.0])), [0.0, 1.0, 15.0, 42.0])
    f = np.array([10.0, 500.0, 999.0, 1000.0, 3000.0, 4000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f)


def test_filterbank_triangles_have_unit_area_and_dct_is_orthonormal():
    bank = mel_filterbank(8000, 4096, 10)                               # fine bins: areas are nearly exact
    areas = bank.sum(axis=1) * (8000 / 4096)
    np.testing.assert_allclose(areas, 1.0, rtol=0.02)
    d = dct_matrix(16, 16)
    np.testing.assert_allclose(d @ d.T, np.eye(16), atol=1e-6)


def test_stft_of_a_sine_peaks_at_its_bin():
    spec = FeatureSpec()                                                 # 8 kHz, 200-sample windows, n_fft 256
    power = Featurizer(spec).power(tone(freq=1000.0, seconds=0.5))      # (T, K)
    assert power.shape == (1 + 4000 // spec.hop, 129)
    assert int(power[10].argmax()) == 32                                 # 1000 Hz / (8000 / 256) Hz per bin


def test_resample_keeps_a_tone_and_the_duration():
    x = tone(freq=440.0, rate=8000, seconds=1.0)
    y = resample(x, 8000, 16000)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) - 440) <= 1                           # 1 Hz bins over one second
    back = resample(y, 16000, 8000)
    np.testing.assert_allclose(back[200:-200], x[200:-200], atol=2e-3)


def test_normalize_gives_zero_mean_unit_variance_per_feature():
    z = normalize(torch.randn(50, 6) * 3 + 7)
    torch.testing.assert_close(z.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0, unbiased=False), torch.ones(6), atol=1e-4, rtol=0)


def test_spec_augment_is_seeded_and_masks_only_real_frames():
    x = torch.ones(30, 10)
    a = spec_augment(x, 20, torch.Generator().manual_seed(3), 2, 5, 2, 3)
    b = spec_augment(x, 20, torch.Generator().manual_seed(3), 2, 5, 2, 3)
    assert torch.equal(a, b) and torch.equal(x, torch.ones(30, 10))      # reproducible, input untouched
    masked_frames = (a[:, :] == 0).all(dim=1)
    assert not masked_frames[20:].any()                                  # nothing past the length is time-masked
    assert (a == 0).any()


@pytest.mark.data
def test_features_equal_librosa_on_a_real_recording():
    librosa = pytest.importorskip("librosa")
    path = find_local("fsdd", "recordings.tar.gz")
    if path is None:
        pytest.skip("FSDD is not under LSTMKIT_DATA_DIR")
    with tarfile.open(path) as tar:
        x, rate = read_wav(tar.extractfile("recordings/7_jackson_32.wav").read(), "7_jackson_32.wav")
    spec = FeatureSpec(rate=rate, kind="mfcc", n_mels=40, n_mfcc=20)
    np.testing.assert_allclose(mel_filterbank(rate, spec.n_fft, 40),
                               librosa.filters.mel(sr=rate, n_fft=spec.n_fft, n_mels=40), atol=1e-7)
    mel = librosa.feature.melspectrogram(y=x, sr=rate, n_fft=spec.n_fft, hop_length=spec.hop, win_length=spec.win,
                                         n_mels=40, power=2.0)
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    featurizer = Featurizer(spec)
    np.testing.assert_allclose(featurizer.log_mel(x).numpy(), db.T, atol=1e-3)
    np.testing.assert_allclose(featurizer.raw(x).numpy(), librosa.feature.mfcc(S=db, n_mfcc=20).T, atol=1e-3)
    np.testing.assert_allclose(resample(x, rate, 16000),
                               librosa.resample(x, orig_sr=rate, target_sr=16000, res_type="polyphase"), atol=1e-6)
