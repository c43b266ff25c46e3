"""``kser demo-data``: write a small SYNTHETIC emotional-speech set in the CREMA-D layout.

The clips are generated in code (voiced, speech-like signals whose prosody follows the
emotion, with per-actor voices); they are not recordings of people. The set is deterministic:
the same flags always give byte-identical files. Use it to try kser end to end.
"""

from __future__ import annotations

import time

from absl import flags

from kser.demo_data import DEMO_ACTORS, DEMO_SAMPLE_RATE, DEMO_SEED, DEMO_SENTENCES
from kser_cli.common import reports_errors

flags.DEFINE_string("out", None, "Folder to write the synthetic clips into.", required=True)
flags.DEFINE_integer("actors", DEMO_ACTORS, "Number of synthetic actors (speakers).")
flags.DEFINE_integer("sentences", DEMO_SENTENCES, "Sentences per actor and emotion (at most 12).")
flags.DEFINE_integer("sample_rate", DEMO_SAMPLE_RATE, "Sample rate of the written WAV files.")
flags.DEFINE_integer("seed", DEMO_SEED, "Seed; the same seed gives byte-identical files.")

FLAGS = flags.FLAGS


@reports_errors
def main(argv: list[str]) -> None:
    from kser.demo_data import generate_demo_dataset

    started = time.perf_counter()
    summary = generate_demo_dataset(
        FLAGS.out, actors=FLAGS.actors, sentences=FLAGS.sentences, sample_rate=FLAGS.sample_rate, seed=FLAGS.seed
    )
    print(
        f"wrote {summary.num_files} synthetic clips ({summary.num_actors} actors, {summary.total_seconds:.0f} s of audio, "
        f"{summary.bytes / 1e6:.1f} MB) to {summary.out_dir} in {time.perf_counter() - started:.1f} s"
    )
