"""The training front end, built in one place for both placements of the features.

Waveforms -> [WaveformAugment] -> AudioFrontEnd -> [SpecAugment]. The AudioFrontEnd
(kser.audio_frontend: normalisation and features) is the trained model's own; the augmentation
layers around it exist only while training. ``kser.data`` maps these stages over tf.data batches
(features in the input pipeline, on a CPU); ``kser.training`` puts the same stages in front of the
classifier (features on the accelerator). Why one builder: the two placements must draw the same
augmentations from the same seeds, and a second copy would drift.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kser.config import AugmentConfig

# Each random stream of a training run is derived from the run's --seed by a fixed offset, so
# that the streams differ from one another and are reproducible.
WAVEFORM_AUGMENT_SEED_OFFSET = 0
SHUFFLE_SEED_OFFSET = 1
SPEC_AUGMENT_SEED_OFFSET = 2
MIXUP_SEED_OFFSET = 3


def features_can_run_in_tf_data() -> bool:
    """Whether the front end can run inside a tf.data pipeline: only under Keras's TensorFlow
    backend. Under another (JAX, for multi-worker training) its layers run in or before the model."""
    import keras

    return keras.backend.backend() == "tensorflow"


def derived_seed(seed: int | None, offset: int) -> int | None:
    """The seed of one random stream of a run (None stays None: unseeded)."""
    return None if seed is None else seed + offset


@dataclasses.dataclass(frozen=True)
class FrontEnd:
    """The front end's layers in order; the augmentation layers are None when they cannot act."""

    waveform_augment: Any | None
    audio_front_end: Any  # kser.audio_frontend.AudioFrontEnd, the model's own
    spec_augment: Any | None

    def stages(self) -> list[tuple[Any, bool]]:
        """``(layer, random)`` in application order; random stages run with ``training=True``."""
        stages = [(self.waveform_augment, True), (self.audio_front_end, False), (self.spec_augment, True)]
        return [(layer, random) for layer, random in stages if layer is not None]


def training_front_end(audio_front_end: Any, augment: AugmentConfig | None, seed: int | None) -> FrontEnd:
    """The layers that turn a batch of training waveforms into (augmented) features, around the
    model's ``audio_front_end`` (an AudioFrontEnd)."""
    from kser.augment import SpecAugment, WaveformAugment

    augment = augment if augment is not None and augment.active else None
    waveform = augment is not None and augment.waveform_active
    # SpecAugment masks [frames, mels, 3] features; another front end's output (a pretrained
    # encoder's frames) is not a spectrogram.
    spec = augment is not None and augment.specaugment_active and len(audio_front_end.output_feature_shape) == 3
    return FrontEnd(
        waveform_augment=(
            WaveformAugment(
                augment, seed=derived_seed(seed, WAVEFORM_AUGMENT_SEED_OFFSET), sample_rate=audio_front_end.sample_rate, name="waveform_augment"
            )
            if waveform
            else None
        ),
        audio_front_end=audio_front_end,
        spec_augment=(
            SpecAugment(augment, seed=derived_seed(seed, SPEC_AUGMENT_SEED_OFFSET), name="spec_augment") if spec else None
        ),
    )
