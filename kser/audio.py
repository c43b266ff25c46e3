"""Reading audio files into float32 mono at the target rate, with one-line reasons on failure.

soundfile (libsndfile) decodes WAV, FLAC, OGG/Vorbis, Opus, MP3 and more without TensorFlow,
so the record builder's worker processes stay light. When tensorflow-io's kernels load
(``kser[tfio]`` on a TensorFlow it supports), it is used for files soundfile cannot read and
for resampling; ``decoder="tfio"`` forces it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re

import numpy as np

from kser.errors import KserError, SkipClip, first_line
from kser.quiet import silenced_stderr, tensorflow
from kser.tfio_support import load_tfio

DECODERS = ("auto", "soundfile", "tfio")
# Telephone speech is sampled at 8 kHz; at under 4 kHz nothing above 2 kHz survives, and most of
# what tells emotions apart is gone. A file that claims such a rate is broken or not speech.
MIN_SOURCE_RATE = 4_000


@dataclasses.dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32 mono at the asked rate
    source_rate: int
    warnings: tuple[str, ...] = ()  # usable, but not all there (e.g. a truncated file)


def read_audio(path: str, sample_rate: int, decoder: str = "auto") -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 mono at ``sample_rate``; returns (samples, source rate).

    Raises SkipClip with the reason when the file is empty, unreadable, not audio, has no
    samples or holds NaN/inf.
    """
    decoded = decode_audio(path, sample_rate, decoder)
    return decoded.samples, decoded.source_rate


def decode_audio(path: str, sample_rate: int, decoder: str = "auto") -> DecodedAudio:
    """:func:`read_audio` that also says what was odd about a file it could use (truncation)."""
    if decoder not in DECODERS:
        raise KserError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise SkipClip(f"cannot open file: {error.strerror or error}") from None
    if size == 0:
        raise SkipClip("empty file (0 bytes)")

    warnings: tuple[str, ...] = ()
    if decoder == "tfio":
        if load_tfio() is None:
            raise KserError("decoder 'tfio' asked for, but tensorflow-io's kernels do not load here (pip install 'kser[tfio]')")
        samples, source_rate = _decode_tfio(path)
    else:
        try:
            samples, source_rate, warnings = _decode_soundfile(path)
        except SkipClip:
            if decoder == "soundfile" or load_tfio() is None:
                raise
            samples, source_rate = _decode_tfio(path)

    if samples.shape[0] == 0:
        raise SkipClip("no audio samples (zero length)")
    if source_rate < MIN_SOURCE_RATE:
        raise SkipClip(f"sample rate {source_rate} Hz is too low for speech (under {MIN_SOURCE_RATE} Hz)")
    if not np.all(np.isfinite(samples)):
        raise SkipClip("audio contains NaN or infinite samples")
    mono = samples.mean(axis=1, dtype=np.float64).astype(np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if source_rate != sample_rate:
        use_tfio = decoder != "soundfile" and load_tfio() is not None
        mono = resample(mono, source_rate, sample_rate, use_tfio=use_tfio)
    return DecodedAudio(mono, source_rate, warnings)


# libsndfile's description of a file whose header promises more data than the file holds,
# e.g. "data : 96000 (should be 47979)" for a WAV cut short in a copy or download.
_SHORT_CHUNK = re.compile(r"^\s*(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _decode_soundfile(path: str) -> tuple[np.ndarray, int, tuple[str, ...]]:
    import soundfile

    try:  # silenced: libmpg123 prints its own notes on a damaged MP3 straight to fd 2
        with silenced_stderr(), soundfile.SoundFile(path) as audio:
            promised = audio.frames
            samples = audio.read(dtype="float32", always_2d=True)
            rate, extra = audio.samplerate, audio.extra_info
    except soundfile.LibsndfileError as error:
        raise SkipClip(f"not a readable audio file ({error.error_string})") from None
    except (RuntimeError, ValueError, TypeError) as error:
        raise SkipClip(f"not a readable audio file ({error})") from None
    warnings = []
    short = _SHORT_CHUNK.search(extra or "")
    if short:
        header, present = int(short.group(2)), int(short.group(3))
        warnings.append(f"truncated: its header promises {header} bytes of audio, the file holds {present}; the rest is missing")
    elif samples.shape[0] < promised:
        warnings.append(f"truncated: read {samples.shape[0]} of the {promised} frames its header promises")
    return samples, int(rate), tuple(warnings)


def _decode_tfio(path: str) -> tuple[np.ndarray, int]:
    tfio = load_tfio()
    try:
        audio = tfio.audio.AudioIOTensor(path, dtype=None)
        rate = int(audio.rate.numpy())
        samples = audio.to_tensor().numpy()
    except Exception as error:  # tensorflow-io raises a zoo of TF errors for bad files
        message = first_line(error)
        raise SkipClip(f"not a readable audio file (tensorflow-io: {message})") from None
    samples = _to_float(samples)
    return (samples[:, None] if samples.ndim == 1 else samples), rate


def _to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM to float32 in [-1, 1), as soundfile returns it."""
    if np.issubdtype(samples.dtype, np.integer):
        return samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)
    return samples.astype(np.float32)


def resample(samples: np.ndarray, source_rate: int, target_rate: int, use_tfio: bool = False) -> np.ndarray:
    """Band-limited resampling of a mono float32 clip.

    Without tensorflow-io this is FFT resampling of the zero-padded clip (band-limited and exact
    in rate; the clip's ends can ring slightly where the signal is cut off); with it, tensorflow-io's polyphase
    resampler runs in the TensorFlow graph.
    """
    if source_rate == target_rate:
        return samples.astype(np.float32, copy=False)
    if source_rate <= 0 or target_rate <= 0:
        raise SkipClip(f"invalid sample rate {source_rate} Hz")
    out_length = int(round(samples.shape[0] * target_rate / source_rate))
    if out_length == 0:
        raise SkipClip("no audio samples left after resampling (clip too short)")
    if use_tfio:
        tfio = load_tfio()
        tensor = tfio.audio.resample(tensorflow().constant(samples[:, None]), rate_in=source_rate, rate_out=target_rate)
        return tensor.numpy()[:, 0].astype(np.float32)
    # Zero-pad to k * (source / g) samples with k 7-smooth: the rate ratio stays exact and both
    # FFT lengths factor into small primes (an arbitrary clip length can be a large prime, which
    # makes the FFT several times slower).
    g = math.gcd(source_rate, target_rate)
    blocks = _next_smooth(-(-samples.shape[0] // (source_rate // g)))
    n_in, n_out = blocks * (source_rate // g), blocks * (target_rate // g)
    spectrum = np.fft.rfft(samples.astype(np.float64), n=n_in)
    kept = min(spectrum.shape[0], n_out // 2 + 1)
    resized = np.zeros(n_out // 2 + 1, dtype=np.complex128)
    resized[:kept] = spectrum[:kept]
    if n_out % 2 == 0 and kept == n_out // 2 + 1 and n_out < n_in:
        resized[-1] = resized[-1].real  # a Nyquist bin must be real
    resampled = np.fft.irfft(resized, n=n_out) * (n_out / n_in)
    return resampled[:out_length].astype(np.float32)


def _next_smooth(n: int) -> int:
    """The smallest integer >= n whose prime factors are all 2, 3, 5 or 7 (they are dense: a few steps)."""
    candidate = max(n, 1)
    while True:
        rest = candidate
        for prime in (2, 3, 5, 7):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return candidate
        candidate += 1
