"""Audio: WAV/FLAC/OGG (mono or multi-channel, any rate, int or float) as (T, C) values in [-1, 1].

Coordinates are the samples' cell centres over time in [-1, 1]; how fast a backbone must oscillate
to follow 44.1 kHz audio (SIREN's first_omega_0 = 3000) is the backbone's audio recipe, not a
rescaling here. PSNR uses the peak-to-peak range of [-1, 1], i.e. 2.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import torch

from .. import metrics
from ..errors import ConfigError, SignalError
from ..limits import check_shape
from .base import Metric, Predict, Signal, SignalInfo, SignalKind, predict_chunks, predict_grid, register_kind
from .image import check_factor
from .sniff import AUDIO_FORMATS, expect_format

SUFFIXES = (".wav", ".flac", ".ogg", ".oga")
PEAK_TO_PEAK = 2.0  # the width of [-1, 1]; every audio PSNR in inrkit is 10 log10(2² / MSE)
_WAV_SUBTYPES = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")


def _read(path: Path) -> tuple[np.ndarray, int, str]:
    """Decode a sound file, after checking from its header that its length is allowed and all present."""
    import soundfile as sf

    expect_format(path, AUDIO_FORMATS, "audio")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises RuntimeError/LibsndfileError/TypeError for bad files
        raise _unreadable(path, exc) from exc
    check_shape((info.frames,), f"{path}: the clip", SignalError)
    check_shape((info.frames * info.channels,), f"{path}: the clip's values (frames × channels)", SignalError)
    _check_complete(path, declared_wav_frames(path), info.frames)
    try:
        # soundfile maps integer PCM to [-1, 1) by dividing by 2^(bits-1); floats come back as stored.
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    _check_complete(path, info.frames, data.shape[0])
    return data, int(rate), str(info.subtype)


def _unreadable(path: Path, exc: Exception) -> SignalError:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return SignalError(f"{path}: cannot read as audio (corrupt, truncated or unsupported): {first}")


def _check_complete(path: Path, declared: int | None, present: int) -> None:
    """A cut-off file would be fitted as a shorter clip without a word: refuse it, naming both counts."""
    if declared is not None and present < declared:
        raise SignalError(f"{path}: the header declares {declared:,} frames but only {present:,} are present "
                          "(the file is truncated)")


def declared_wav_frames(path: Path) -> int | None:
    """The frame count a WAV header declares (data chunk size / block size); None when not a plain WAV.

    libsndfile quietly shortens a truncated file's length to what is present, so the header is read here.

    Example:
        >>> import tempfile
        >>> import soundfile as sf
        >>> path = Path(tempfile.mkdtemp()) / "tone.wav"
        >>> sf.write(path, np.zeros(800), 8000, subtype="PCM_16")
        >>> declared_wav_frames(path)
        800
    """
    block = None
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while len(chunk := f.read(8)) == 8:
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"fmt ":
                fmt = f.read(size)
                block = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                f.seek(size % 2, 1)
            elif name == b"data":
                # streaming writers leave the size at 0 or 2^32 - 1 ("unknown"): nothing to compare then
                return size // block if block and 0 < size < 0xFFFFFFFF else None
            else:
                f.seek(size + size % 2, 1)
    return None


def _scale(data: np.ndarray, subtype: str, normalize: bool, path: Path) -> tuple[np.ndarray, dict]:
    """Bring samples into [-1, 1]; returns them and a meta record of exactly what was done."""
    if not np.isfinite(data).all():
        raise SignalError(f"{path}: audio holds NaN or infinite samples")
    peak = max(float(data.max()), -float(data.min()))  # |x| max without an |x| copy of a long clip
    is_int = subtype.startswith("PCM")
    if normalize:
        scale = peak if peak > 0 else 1.0
        how = f"{'integer full scale' if is_int else 'float'} samples divided by their peak |x| = {peak:.6g}"
    elif peak > 1:
        scale = peak
        how = f"float samples beyond [-1, 1] divided by their peak |x| = {peak:.6g}"
    else:
        scale = 1.0
        how = ("integer samples divided by 2^(bits-1) (full scale -> 1)" if is_int
               else "float samples as stored (already in [-1, 1])")
    if scale != 1.0:
        data = np.divide(data, scale, out=data) if data.dtype == np.float32 else data / scale  # no second copy
    return data.astype(np.float32, copy=False), {"scaling": how, "value_scale": scale}


def load_audio(path: str | Path, normalize: bool = False, **_: object) -> Signal:
    """Read a sound file into a Signal of kind "audio": values (T, C) in [-1, 1], sample rate in meta.

    Integer PCM maps full scale to 1; float files are kept as stored when they lie in [-1, 1] and are
    divided by their peak otherwise. `normalize=True` always divides by the peak (as SIREN's loader does).
    `meta["scaling"]` says which happened and `meta["value_scale"]` undoes it.

    Example:
        >>> import tempfile
        >>> import soundfile as sf
        >>> path = Path(tempfile.mkdtemp()) / "tone.wav"
        >>> sf.write(path, 0.5 * np.sin(np.arange(8000) / 10), 16000, subtype="PCM_16")
        >>> sig = load_audio(path)
        >>> sig.shape, sig.meta["sample_rate"], sig.data_range
        ((8000,), 16000, (-1.0, 1.0))
    """
    path = Path(path)
    data, rate, subtype = _read(path)
    if data.shape[0] < 2:
        raise SignalError(f"{path}: audio holds {data.shape[0]} samples; need at least 2 to fit")
    if not data.any():
        # Nothing to learn, and its SNR (signal energy / error energy) has no value: a silent clip is
        # almost always the wrong file or channel, so say so rather than report a perfect fit.
        raise SignalError(f"{path}: the clip is silent (all {data.size:,} samples are 0): nothing to fit")
    values, facts = _scale(data, subtype, normalize, path)
    meta = {"name": path.stem, "source": str(path), "sample_rate": rate, "subtype": subtype,
            "duration_s": round(values.shape[0] / rate, 6), "peak_to_peak": PEAK_TO_PEAK, **facts}
    return Signal("audio", torch.from_numpy(np.ascontiguousarray(values)), (-1.0, 1.0), meta=meta)


def evaluate_audio(predict: Predict, signal: Signal, chunk: int = 1 << 16, **_: object) -> dict[str, float]:
    """PSNR on [-1, 1] (peak-to-peak 2) and SNR in dB of the clamped prediction at the signal's rate.

    Sums run over chunks in float64, so evaluating a long clip needs no second copy of it.
    """
    n = signal.shape[0]
    noise = energy = 0.0
    for index, values in predict_chunks(predict, signal.shape, chunk):
        pred = values.double().clamp(-1.0, 1.0)
        target = signal.targets(index).double()
        noise += float(((pred - target) ** 2).sum())
        energy += float((target**2).sum())
    err = noise / (n * signal.channels)
    # a perfect fit has an infinite SNR; a silent target with any error, minus infinity
    snr = math.inf if noise <= 0 else -math.inf if energy <= 0 else 10 * math.log10(energy / noise)
    return {"psnr": metrics.psnr_from_mse(err, PEAK_TO_PEAK), "snr": snr, "mse": err}


def render_audio(predict: Predict, info: SignalInfo, rate: float | None = None, scale: float | None = None,
                 size: tuple[int, ...] | None = None, **_: object) -> np.ndarray:
    """The clip at its own sample rate, or at `rate` Hz (or `scale` times, or `size` samples), same duration.

    Example:
        >>> from inrkit import create_model, load_signal, render
        >>> sig = load_signal(np.zeros((1000, 1), np.float32), kind="audio")  # 1000 samples
        >>> model = create_model("siren", signal=sig, hidden_features=16)
        >>> render(model, scale=2).shape, render(model, scale=0.5).shape
        ((2000, 1), (500, 1))
    """
    n = info.shape[0]
    if rate is not None:
        n = max(2, round(n * check_factor(rate, "rate") / info.meta.get("sample_rate", rate)))
    elif scale is not None:
        n = max(2, round(n * check_factor(scale, "scale")))
    elif size is not None:
        if len(size) != 1:
            raise ConfigError(f"size {tuple(size)} does not fit a clip: give one number of samples")
        n = size[0]
    grid = predict_grid(predict, check_shape((n,), "the rendered clip"))
    return np.clip(grid, -1.0, 1.0, out=grid)  # in place: a long clip is not copied again


STANDARD_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 192000)


def rate_of(array: np.ndarray, info: SignalInfo) -> int:
    """The sample rate of a rendered clip: it covers the source's duration whatever its length.

    Length -> rate loses precision on short clips, so a standard rate that renders to exactly this
    length wins (300 samples at 8 kHz rendered at 22050 Hz give 827 samples, i.e. 22050, not 22053).
    """
    source, n, length = int(info.meta.get("sample_rate", 44100)), info.shape[0], array.shape[0]
    for rate in STANDARD_RATES:
        if max(2, round(n * rate / source)) == length:
            return rate
    return max(1, round(source * length / n))


def write_audio(array: np.ndarray, info: SignalInfo, path: Path) -> None:
    """A WAV/FLAC/OGG at the rendered rate, in the source's sample format when that format allows it."""
    import soundfile as sf

    subtype = info.meta.get("subtype", "FLOAT")
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG"}.get(path.suffix.lower(), "WAV")
    if fmt == "WAV" and subtype not in _WAV_SUBTYPES:
        subtype = "FLOAT"
    elif fmt != "WAV":
        subtype = None  # libsndfile's default for that container
    try:
        sf.write(str(path), np.clip(array, -1.0, 1.0), rate_of(array, info), subtype=subtype, format=fmt)
    except Exception as exc:
        raise SignalError(f"{path}: cannot write audio: {exc}") from exc


def preview_audio(array: np.ndarray, signal: Signal, path: Path) -> None:
    """Waveforms (top) and spectrograms (bottom) of the original and the fit, first channel.

    Both are drawn from a fixed number of columns (a min/max envelope, evenly spaced FFT windows),
    so a preview of a long clip costs no more memory than one of a short clip.
    """
    from ..plotting import subplots

    rate = int(signal.meta.get("sample_rate", 44100))
    target = signal.values.numpy()[:, 0]
    fitted, fit_rate = array[:, 0], round(rate * len(array) / len(target))
    fig, axes = subplots(2, 2, figsize=(12, 6), sharex="col")
    for col, (x, sr, title) in enumerate(((target, rate, "original"), (fitted, fit_rate, "fit"))):
        times, low, high = envelope(x, sr)
        axes[0, col].fill_between(times, low, high, color="C0", lw=0.3)
        axes[0, col].plot(times, high, times, low, color="C0", lw=0.3)  # a short clip's envelope is its wave
        axes[0, col].set_ylim(-1.05, 1.05)
        axes[0, col].set_title(title)
        power, extent = spectrogram(x, sr)
        axes[1, col].imshow(power, origin="lower", aspect="auto", extent=extent, cmap="magma")
        axes[1, col].set_xlabel("time (s)")
    axes[0, 0].set_ylabel("amplitude")
    axes[1, 0].set_ylabel("frequency (Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def envelope(x: np.ndarray, rate: float, columns: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, min, max) of `x` over `columns` equal pieces (every sample when shorter), as editors draw it.

    Example:
        >>> t, low, high = envelope(np.sin(np.arange(100_000) / 50), 1000.0, columns=10)
        >>> len(t), round(float(low.min()), 3), round(float(high.max()), 3)
        (10, -1.0, 1.0)
    """
    if len(x) <= columns:
        return np.arange(len(x)) / rate, x, x
    edges = np.linspace(0, len(x), columns + 1).astype(int)
    return edges[:-1] / rate, np.minimum.reduceat(x, edges[:-1]), np.maximum.reduceat(x, edges[:-1])


def spectrogram(x: np.ndarray, rate: float, windows: int = 1024) -> tuple[np.ndarray, tuple[float, ...]]:
    """Power in dB (frequencies x time) of at most `windows` evenly spaced Hann windows, and its extent."""
    nfft = int(min(1024, max(16, 2 ** int(np.log2(max(len(x) // 8, 16))))))
    nfft = min(nfft, len(x))
    starts = np.unique(np.linspace(0, len(x) - nfft, min(windows, max(1, 2 * len(x) // nfft))).astype(int))
    frames = np.stack([x[s:s + nfft] for s in starts]) * np.hanning(nfft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    with np.errstate(divide="ignore"):  # silent stretches have zero power: drawn as the floor
        db = 10 * np.log10(power.T)
    floor = np.max(db) - 120 if np.isfinite(db).any() else 0.0
    return np.maximum(db, floor), (0.0, len(x) / rate, 0.0, rate / 2)


def waveform(array: np.ndarray, height: int = 64, width: int = 256) -> np.ndarray | None:
    """(N, C) samples in [-1, 1] -> a min/max envelope strip, as audio editors draw it."""
    wave = np.asarray(array, dtype=np.float32).reshape(len(array), -1).mean(-1)
    if wave.size < 2:
        return None
    edges = np.linspace(0, wave.size, width + 1).astype(int)
    picture = np.zeros((height, width, 1), np.float32)
    for col, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        piece = wave[a:max(b, a + 1)]
        top, bottom = (np.clip(1 - (np.array([piece.max(), piece.min()]) + 1) / 2, 0, 1) * (height - 1)).astype(int)
        picture[top:bottom + 1, col] = 1.0
    return picture


AUDIO = register_kind(SignalKind(
    name="audio", suffixes=SUFFIXES, load=load_audio, evaluate=evaluate_audio, render=render_audio,
    write=write_audio, extension=".wav", write_suffixes=SUFFIXES, coord_dims=1, channels=1, data_range=(-1.0, 1.0),
    metrics=(Metric("psnr", True, "dB"), Metric("snr", True, "dB"), Metric("mse", False)),
    load_options=("normalize",), render_options=("rate",), preview=preview_audio, thumbnail=waveform,
    batch_size=1 << 15,
))
