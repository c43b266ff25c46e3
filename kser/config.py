"""All of kser's configuration in one place, with the reference study's values as defaults.

Each stage reads only its own dataclass; the command line maps flags onto these fields, and
the records manifest stores them so that a build can be reproduced and resumed.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Mapping

CREMA_D_EMOTIONS: tuple[str, ...] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")


ADDED_LATER = "added_later"  # field metadata: stored only when not at its default


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """Per-clip waveform preparation (study steps 1-4)."""

    sample_rate: int = 16_000
    clip_seconds: float = 3.0
    # > 0: cut leading and trailing frames quieter than the clip's loudest by more than this many dB
    # (kser.waveform.trim_silence) before normalising and cropping; 0 keeps the clip whole (the study).
    trim_db: float = 0.0
    normalize: bool = True
    # Peak-relative Gaussian noise: amp = noise_level * U(0, 1) * max(y); 0 writes clean audio.
    noise_level: float = 0.035
    # A clip whose standard deviation is below this is treated as silent (not scaled).
    silence_std: float = 1e-6

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))


# Named waveform preparations (``kser build-records --preprocessing=NAME``). AudioConfig's own
# defaults are the study's steps; "kser" is the recommendation (benchmarks/EXPERIMENTS.md says why).
STUDY_AUDIO = AudioConfig()
KSER_AUDIO = AudioConfig()
PREPROCESSING: dict[str, AudioConfig] = {"kser": KSER_AUDIO, "study": STUDY_AUDIO}
DEFAULT_PREPROCESSING = "kser"

# Scoring: `kser evaluate` and `kser export` (the hop between the 3 s windows of a long recording).
EVAL_SPLIT = "test"
EVAL_BATCH_SIZE = 32
WINDOW_HOP_SECONDS = 1.0
# A speaker-normalised model (kser.speaker_norm) is evaluated with each speaker's own statistics or the training clips'.
SPEAKER_STATS = ("speaker", "training")


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """How clips are divided into train / validation / test before anything else happens."""

    # "speaker" (actor-disjoint, stratified), "random" (per clip, stratified, the study) or
    # "none" (every clip in the test split: records for scoring a model or for cross-validation)
    strategy: str = "speaker"
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)  # train, validation, test


@dataclasses.dataclass(frozen=True)
class RecordsConfig:
    """Shape of the TFRecord output."""

    shard_size_mb: float = 150.0
    # Shards per non-empty split: exactly num_shards when set (else from shard_size_mb), and never
    # fewer than min_shards. Multi-worker training reads one worker's share of the files each;
    # a split needs at least as many shards as workers. Both are capped at the split's clips.
    num_shards: int | None = None
    min_shards: int = 1
    # "int16": peak-scaled 16-bit PCM plus a float scale per clip; "float32": exact.
    waveform_encoding: str = "int16"


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """One ``kser build-records`` run: where from, where to, and how."""

    data_dir: str
    output_dir: str
    layout: str = "crema_d"
    speaker_pattern: str | None = None
    csv_path: str | None = None
    labels: tuple[str, ...] | None = None  # the label set in order; None: the layout's default
    seed: int = 0  # drives the split, the shard order and the per-clip noise
    audio: AudioConfig = AudioConfig()
    split: SplitConfig = SplitConfig()
    records: RecordsConfig = RecordsConfig()
    decoder: str = "auto"  # "auto": soundfile, then tensorflow-io if its kernels load; or "soundfile" / "tfio"
    workers: int = 0  # 0: one per CPU core
    strict: bool = False
    overwrite: bool = False
    # More corpora in the same records, "LAYOUT=DIR" each: their clips with labels of the set above,
    # speakers and clip ids prefixed "LAYOUT:" (kser.layouts.with_corpora).
    also: tuple[str, ...] = dataclasses.field(default=(), metadata={ADDED_LATER: True})


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Log-mel + delta + delta-delta features (study step 5-6), librosa-compatible."""

    sample_rate: int = 16_000
    n_fft: int = 512
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    window: str = "hamming"
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None  # None: sample_rate / 2
    center: bool = True
    amin: float = 1e-10
    delta_width: int = 9
    num_frames: int | None = 300  # frames kept per clip; None keeps all
    # Three more channels after log-mel, delta, delta-delta: energy, voicing, relative pitch (kser.prosody).
    prosody: bool = dataclasses.field(default=False, metadata={ADDED_LATER: True})


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass, nested ones included. A field marked
    ``metadata={ADDED_LATER: True}`` is left out at its default: stored settings (train_config.json,
    cv_config.json) are compared whole on resume, so runs stored before it existed still match."""
    result = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.metadata.get(ADDED_LATER) and value == field.default:
            continue
        result[field.name] = to_dict(value) if dataclasses.is_dataclass(value) else copy.deepcopy(value)
    return result


def omit_added_later(settings: Mapping[str, Any], added_later: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` without those of ``added_later`` (name -> default) that are at their default.

    Stored definitions (a build's fingerprint, a cross-validation's settings) are compared whole on
    resume; a setting added after some were stored is left out at its default, so they still match.
    """
    missing = object()
    return {name: value for name, value in settings.items() if added_later.get(name, missing) != value}


def from_dict(cls: type, values: Mapping[str, Any]) -> Any:
    """Rebuild a config dataclass from ``to_dict`` output, restoring tuple fields."""
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in values:
            value = values[field.name]
            kwargs[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


AUGMENT_PITCH_METHODS: tuple[str, ...] = ("vocoder", "resample")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """On-the-fly training augmentation (the study's model 3), applied per clip and per epoch.

    The strengths are the study's: peak-relative noise ``0.035 * U(0,1) * max(y)``, gain
    ``U(-5, 5)`` dB, pitch ``U(-2, 2)`` semitones, SpecAugment with 2 frequency and 2 time
    masks of width ``U{0..7}`` (the width bounds are exclusive) set to 0. The study appended
    25% augmented copies once; here every clip is re-drawn every epoch instead, so each
    augmentation fires with its own probability. Defaults: 0.5 for each waveform one (a clip
    stays clean of all three 1/8 of the time, so the model still sees natural audio) and 1.0
    for SpecAugment (cheap masks that act like dropout on the input; widths of 0 leave some
    clips unmasked anyway). Note: records built with ``AudioConfig.noise_level > 0`` already
    hold one fixed noise draw; the noise here adds a fresh one on top.
    """

    enabled: bool = True  # master switch: False turns every augmentation off
    noise_prob: float = 0.5
    noise_level: float = 0.035  # amplitude = noise_level * U(0, 1) * max(y)
    gain_prob: float = 0.5
    gain_db: float = 5.0  # gain ~ U(-gain_db, gain_db) dB
    pitch_prob: float = 0.5
    pitch_semitones: float = 2.0  # shift ~ U(-pitch_semitones, pitch_semitones)
    # "vocoder": duration kept (like librosa.effects.pitch_shift); "resample": speed perturbation
    pitch_method: str = "vocoder"
    specaugment_prob: float = 1.0
    freq_masks: int = 2
    freq_mask_width: int = 8  # widths drawn in [0, freq_mask_width) mel bands
    time_masks: int = 2
    time_mask_width: int = 8  # widths drawn in [0, time_mask_width) frames
    # Room and channel (issue 22; off by default until speaker CV and URDU say otherwise):
    # reverberation by a synthetic room impulse response, RT60 ~ U(0.1, reverb_rt60) s ...
    reverb_prob: float = dataclasses.field(default=0.0, metadata={ADDED_LATER: True})
    reverb_rt60: float = dataclasses.field(default=0.6, metadata={ADDED_LATER: True})
    # ... and a random channel: high-pass U(0, 300) Hz, low-pass U(3400, 8000) Hz (telephone to
    # wideband), and a spectral tilt of U(-channel_tilt_db, channel_tilt_db) dB per octave around 1 kHz.
    channel_prob: float = dataclasses.field(default=0.0, metadata={ADDED_LATER: True})
    channel_tilt_db: float = dataclasses.field(default=3.0, metadata={ADDED_LATER: True})
    # A codec: mu-law companding (G.711's curve) quantised to U{codec_bits..8} bits per clip, the
    # level-dependent quantisation noise of telephone and low-rate digital chains.
    codec_prob: float = dataclasses.field(default=0.0, metadata={ADDED_LATER: True})
    codec_bits: int = dataclasses.field(default=4, metadata={ADDED_LATER: True})
    # Babble: 1 to babble_talkers other clips of the batch, summed at unit power each, added at an
    # SNR of U(babble_snr_db, babble_snr_db + 15) dB (people talking in the room, a talk show's cross-talk).
    babble_prob: float = dataclasses.field(default=0.0, metadata={ADDED_LATER: True})
    babble_talkers: int = dataclasses.field(default=3, metadata={ADDED_LATER: True})
    babble_snr_db: float = dataclasses.field(default=5.0, metadata={ADDED_LATER: True})
    # Shorter recordings: a random stretch of U(crop_min_seconds, clip) s of the clip, moved to the start,
    # renormalised and padded with peak-relative noise at noise_level, as the record builder prepares a
    # recording shorter than the clip (other corpora's 1-3 s clips; RAVDESS's are all longer than 3 s).
    crop_prob: float = dataclasses.field(default=0.0, metadata={ADDED_LATER: True})
    crop_min_seconds: float = dataclasses.field(default=1.0, metadata={ADDED_LATER: True})

    def __post_init__(self) -> None:
        for name in ("noise_prob", "gain_prob", "pitch_prob", "specaugment_prob", "reverb_prob", "channel_prob", "codec_prob", "babble_prob", "crop_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        for name in ("noise_level", "gain_db", "pitch_semitones", "channel_tilt_db"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.pitch_semitones <= 12:
            raise ValueError(f"pitch_semitones must be in [0, 12], got {self.pitch_semitones}")
        for name in ("freq_masks", "freq_mask_width", "time_masks", "time_mask_width", "babble_talkers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not isinstance(self.codec_bits, int) or isinstance(self.codec_bits, bool) or not 2 <= self.codec_bits <= 8:
            raise ValueError(f"codec_bits must be a whole number in [2, 8], got {self.codec_bits!r}")
        if not self.crop_min_seconds > 0:
            raise ValueError(f"crop_min_seconds must be > 0, got {self.crop_min_seconds}")
        if not 0.1 <= self.reverb_rt60 <= 2.0:
            raise ValueError(f"reverb_rt60 must be in [0.1, 2.0] s, got {self.reverb_rt60}")
        if self.pitch_method not in AUGMENT_PITCH_METHODS:
            raise ValueError(
                f"pitch_method must be one of {AUGMENT_PITCH_METHODS}, got {self.pitch_method!r}"
            )

    @property
    def noise_active(self) -> bool:
        return self.enabled and self.noise_prob > 0 and self.noise_level > 0

    @property
    def gain_active(self) -> bool:
        return self.enabled and self.gain_prob > 0 and self.gain_db > 0

    @property
    def pitch_active(self) -> bool:
        return self.enabled and self.pitch_prob > 0 and self.pitch_semitones > 0

    @property
    def specaugment_active(self) -> bool:
        """True if SpecAugment can mask something (a width bound of 1 only draws width 0)."""
        masks = (self.freq_masks > 0 and self.freq_mask_width > 1) or (
            self.time_masks > 0 and self.time_mask_width > 1
        )
        return self.enabled and self.specaugment_prob > 0 and masks

    @property
    def reverb_active(self) -> bool:
        return self.enabled and self.reverb_prob > 0

    @property
    def channel_active(self) -> bool:
        return self.enabled and self.channel_prob > 0

    @property
    def babble_active(self) -> bool:
        return self.enabled and self.babble_prob > 0 and self.babble_talkers > 0

    @property
    def codec_active(self) -> bool:
        return self.enabled and self.codec_prob > 0

    @property
    def crop_active(self) -> bool:
        return self.enabled and self.crop_prob > 0

    @property
    def waveform_active(self) -> bool:
        return (
            self.noise_active or self.gain_active or self.pitch_active or self.reverb_active or self.channel_active
            or self.codec_active or self.babble_active or self.crop_active
        )

    @property
    def active(self) -> bool:
        """True if any augmentation can change a clip."""
        return self.waveform_active or self.specaugment_active


SCHEDULES: tuple[str, ...] = ("exponential", "cosine")
MONITORS: tuple[str, ...] = ("val_loss", "val_uar")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How an architecture trains by default. Each architecture registers one with its builder
    (``kser.models.register``); every field is also a :class:`TrainConfig` field that a run may set.

    The defaults are the study's models 1 and 2: Adam, ``ExponentialDecay(1e-4, 1000, 0.95,
    staircase=True)``, plain cross-entropy, no augmentation, up to 50 epochs, early stopping on
    validation loss with patience 15.
    """

    learning_rate: float = 1e-4
    # "exponential": lr * decay_rate ** (step // decay_steps) (the study); "cosine": linear warm-up
    # over warmup_epochs, then cosine decay to 0 at the last epoch.
    schedule: str = "exponential"
    decay_rate: float = 0.95
    warmup_epochs: int = 0
    weight_decay: float = 0.0  # > 0: AdamW with this decoupled weight decay; 0: Adam
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0  # > 0: mixup of training batches with lambda ~ Beta(alpha, alpha)
    augment: bool = False  # on-the-fly augmentation of the training split, with `augmentation`
    augmentation: AugmentConfig = AugmentConfig()  # what and how strong (the study's model 3 by default)
    epochs: int = 50
    patience: int = 15  # early stopping on `monitor`, best weights restored
    monitor: str = "val_loss"  # or "val_uar" (maximised)

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {self.monitor!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 < self.decay_rate <= 1:
            raise ValueError(f"decay_rate must be in (0, 1], got {self.decay_rate}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        for name in ("weight_decay", "mixup_alpha"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.epochs < 1 or self.patience < 1 or self.warmup_epochs < 0:
            raise ValueError("epochs and patience must be >= 1 and warmup_epochs >= 0")


_RECIPE_FIELDS = tuple(field.name for field in dataclasses.fields(Recipe))

# Named recipes (``--recipe=NAME``); each architecture registers one of them as its own.
# The study's models 1 and 2 (and the attention-pooling variant): Adam, ExponentialDecay(1e-4, 1000, 0.95).
STUDY_RECIPE = Recipe()
# The study's model 3: ExponentialDecay(5e-4, 1000, 0.9) and on-the-fly augmentation.
STUDY_FT_RECIPE = Recipe(learning_rate=5e-4, decay_rate=0.9, augment=True)
# kser's recommendation for corpora of 500-10,000 clips, `small`'s own. Why (benchmarks/EXPERIMENTS.md,
# E04): with 12 training speakers the model learns the speakers, so the recipe regularises: fresh
# augmentation every epoch (speed-perturbation pitch, gain, noise, SpecAugment), mixup, label
# smoothing, decoupled weight decay, and a warm-up + cosine schedule that really decays
# (the study's staircase decay never moves within ~1,000 steps).
KSER_RECIPE = Recipe(
    learning_rate=1e-3,
    schedule="cosine",
    decay_rate=0.9,  # unused by the cosine schedule; kept equal to the runs in EXPERIMENTS.md
    warmup_epochs=3,
    weight_decay=0.004,
    label_smoothing=0.1,
    mixup_alpha=0.2,
    augment=True,
    # A simulated room for half the clips (E18: +3.1 ± 1.4 UAR over 6 speaker folds, URDU unchanged).
    augmentation=AugmentConfig(pitch_method="resample", reverb_prob=0.5),
    epochs=60,
    patience=20,
)
# A head over a frozen pretrained encoder's cached frames (``--arch=whisper``): no augmentation
# (the cache holds each clip's encoder output once), a short cosine schedule.
ENCODER_HEAD_RECIPE = Recipe(
    learning_rate=1e-3,
    schedule="cosine",
    warmup_epochs=2,
    weight_decay=0.01,
    label_smoothing=0.1,
    augment=False,
    epochs=30,
    patience=10,
)
RECIPES: dict[str, Recipe] = {"study": STUDY_RECIPE, "study_ft": STUDY_FT_RECIPE, "kser": KSER_RECIPE}


@dataclasses.dataclass(frozen=True)
class CrossValidationConfig:
    """Speaker k-fold cross-validation (``kser cross-validate``)."""

    folds: int = 6
    seed: int = 0  # deals speakers into folds; also the training seed of fold 0 when --seed is not given
    # Run only folds 0 .. max_folds-1 of the K (for models too slow for all K); None runs them all.
    # The partition is the same; the report says how many folds ran.
    max_folds: int | None = None
    # False: no validation fold; fold k+1's speakers train too (K-1 folds of speakers instead of
    # K-2), for exactly --epochs epochs with the last weights kept.
    validate: bool = True


@dataclasses.dataclass(frozen=True)
class DistributionConfig:
    """How ``kser train`` spreads one run over devices or hosts (kser.distribution).

    Not part of the run's definition: ``--batch_size`` is the global batch in every mode, so the
    recipe means the same thing on one device or many, and an interrupted run may resume under
    another mode.
    """

    mode: str = "none"  # "none", "mirrored" (one host, several devices), "multi_worker" (several hosts), "auto"
    devices: tuple[str, ...] = ()  # mirrored: e.g. ("GPU:0", "GPU:1"); () = every local GPU


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One ``kser train`` run. A field left None takes the architecture's :class:`Recipe` value
    (:meth:`with_recipe`); ``kser.training.train`` resolves them before anything else."""

    arch: str = "small"  # the recommendation; `lstm` is the study's model
    recipe: str | None = None  # a RECIPES name; None: the architecture's own recipe
    epochs: int | None = None
    batch_size: int = 32
    learning_rate: float | None = None
    schedule: str | None = None
    decay_steps: int = 1000
    decay_rate: float | None = None
    staircase: bool = True
    warmup_epochs: int | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    mixup_alpha: float | None = None
    patience: int | None = None
    monitor: str | None = None
    balance: str = "oversample"  # the study: oversample the training split only
    augment: bool | None = None
    augmentation: AugmentConfig | None = None
    features_on: str = "auto"  # "pipeline" (tf.data), "model" (front layers, for GPUs), "auto"
    mixed_precision: bool = False
    seed: int | None = None
    deterministic: bool = False
    profile_batches: str = ""  # e.g. "10,20": TensorBoard profiler trace of those steps
    # A pretrained encoder's keras-hub preset (a name, or a local folder) for the architectures that
    # take one (kser.architectures.PRESET_ARCHITECTURES); a local folder is stored absolute.
    preset: str | None = dataclasses.field(default=None, metadata={ADDED_LATER: True})
    # > 0: a speaker-adversarial head during training, its gradient reversed with this scale (kser.adversary).
    speaker_adversary: float = dataclasses.field(default=0.0, metadata={ADDED_LATER: True})
    # Normalise each speaker's log-mel to zero mean, unit sd per band (kser.speaker_norm).
    speaker_norm: bool = dataclasses.field(default=False, metadata={ADDED_LATER: True})

    def with_recipe(self, recipe: Recipe) -> "TrainConfig":
        """Every None recipe field filled in from ``recipe``; the result is validated like a Recipe."""
        values = {name: getattr(self, name) for name in _RECIPE_FIELDS}
        merged = {name: getattr(recipe, name) if value is None else value for name, value in values.items()}
        Recipe(**merged)  # validates the combination
        return dataclasses.replace(self, **merged)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """Inverse of ``to_dict`` (the nested augmentation included)."""
        config = from_dict(cls, values)
        if isinstance(config.augmentation, Mapping):
            config = dataclasses.replace(config, augmentation=from_dict(AugmentConfig, config.augmentation))
        return config

    @property
    def resolved(self) -> bool:
        return all(getattr(self, name) is not None for name in _RECIPE_FIELDS)
