"""``kser build-records``: audio folder -> sharded TFRecords of prepared waveforms."""

from __future__ import annotations

from absl import flags

from kser.audio import DECODERS
import dataclasses
import sys

from kser.config import DEFAULT_PREPROCESSING, PREPROCESSING, BuildConfig, RecordsConfig, SplitConfig
from kser.layouts import available_layouts, layout_example
from kser.records import ENCODINGS
from kser.splits import STRATEGIES
from kser_cli.common import reports_errors

_SPLIT, _RECORDS = SplitConfig(), RecordsConfig()
_BUILD = BuildConfig(data_dir="", output_dir="")  # only its defaults are read
_PRESET = " (default: the --preprocessing preset's)"

flags.DEFINE_string("data_dir", None, "Folder of audio files (searched recursively).", required=True)
flags.DEFINE_string("output_dir", None, "Where the shards and manifest.json go.", required=True)
flags.DEFINE_enum("layout", _BUILD.layout, available_layouts(), "How file names/folders map to labels and speakers: " + "; ".join(f"{name}: {layout_example(name)}" for name in available_layouts()) + ".")
flags.DEFINE_list("labels", None, "The label set, in order, e.g. ANG,HAP,NEU,SAD (default: the layout's; CREMA-D's six for the emotion corpora). Clips with other labels are excluded and counted.")
flags.DEFINE_list("also", [], "More corpora in the same records, LAYOUT=DIR each (e.g. emodb=/data/emodb,tess=/data/tess): their clips with labels of the set, speakers and clip ids prefixed LAYOUT: (multi-corpus training).")
flags.DEFINE_string("speaker_pattern", None, "folders layout: regex whose first group, searched in the file stem, is the speaker.")
flags.DEFINE_string("csv", None, "csv layout: listing with header path,label[,speaker] (default DATA_DIR/labels.csv).")
flags.DEFINE_enum("split", _SPLIT.strategy, list(STRATEGIES), "speaker: actor-disjoint and stratified; random: per clip, stratified (the study); none: every clip in the test split (to score a model on, or to cross-validate).")
flags.DEFINE_list("split_fractions", [str(f) for f in _SPLIT.fractions], "train,validation,test fractions.")
flags.DEFINE_integer("seed", _BUILD.seed, "Seed for the split, shard order and noise.")
flags.DEFINE_enum("preprocessing", DEFAULT_PREPROCESSING, list(PREPROCESSING), "Waveform preparation preset (kser.config.PREPROCESSING): kser, the recommendation, or study, the study's exact steps; the flags below override single settings.")
flags.DEFINE_integer("sample_rate", None, "Target sample rate in Hz (files are resampled)" + _PRESET + ".")
flags.DEFINE_float("clip_seconds", None, "Clips are padded with silence or trimmed to this length" + _PRESET + ".")
flags.DEFINE_float("trim_db", None, "> 0: trim leading/trailing frames quieter than the loudest by this many dB before cropping; 0: keep whole clips (the study)" + _PRESET + ".")
flags.DEFINE_boolean("normalize", None, "Normalise each clip to zero mean and unit variance" + _PRESET + ".")
flags.DEFINE_float("noise_level", None, "Peak-relative Gaussian noise level; 0 writes clean audio" + _PRESET + ".")
flags.DEFINE_float("shard_size_mb", _RECORDS.shard_size_mb, "Target shard size in MB.")
flags.DEFINE_integer("num_shards", _RECORDS.num_shards, "Exactly this many shards per split (instead of --shard_size_mb).")
flags.DEFINE_integer("min_shards", _RECORDS.min_shards, "At least this many shards per split: the number of workers of a multi-worker training.")
flags.DEFINE_enum("waveform_encoding", _RECORDS.waveform_encoding, list(ENCODINGS), "Stored sample format.")
flags.DEFINE_enum("decoder", _BUILD.decoder, list(DECODERS), "auto: soundfile, then tensorflow-io when its kernels load.")
flags.DEFINE_integer("workers", _BUILD.workers, "Decoding processes; 0 = one per CPU core.")
flags.DEFINE_boolean("strict", False, "Fail on the first file that cannot be used instead of skipping it.")
flags.DEFINE_boolean("overwrite", False, "Replace an existing build with a different configuration.")

FLAGS = flags.FLAGS
_AUDIO_FLAGS = ("sample_rate", "clip_seconds", "trim_db", "normalize", "noise_level")


def config_from_flags() -> BuildConfig:
    try:
        fractions = tuple(float(f) for f in FLAGS.split_fractions)
    except ValueError:
        fractions = ()
    return BuildConfig(
        data_dir=FLAGS.data_dir,
        output_dir=FLAGS.output_dir,
        layout=FLAGS.layout,
        speaker_pattern=FLAGS.speaker_pattern,
        csv_path=FLAGS.csv,
        labels=tuple(FLAGS.labels) if FLAGS.labels else None,
        also=tuple(FLAGS.also),
        seed=FLAGS.seed,
        audio=dataclasses.replace(
            PREPROCESSING[FLAGS.preprocessing],
            **{name: FLAGS[name].value for name in _AUDIO_FLAGS if FLAGS[name].value is not None},
        ),
        split=SplitConfig(strategy=FLAGS.split, fractions=fractions),
        records=RecordsConfig(
            shard_size_mb=FLAGS.shard_size_mb,
            num_shards=FLAGS.num_shards,
            min_shards=FLAGS.min_shards,
            waveform_encoding=FLAGS.waveform_encoding,
        ),
        decoder=FLAGS.decoder,
        workers=FLAGS.workers,
        strict=FLAGS.strict,
        overwrite=FLAGS.overwrite,
    )


MAX_WARNING_LINES = 20


def summary(result) -> str:
    manifest = result.manifest
    lines = [
        f"records in {result.output_dir}: {result.shards_written} shard(s) written, {result.shards_reused} reused",
    ]
    for split, info in manifest["splits"].items():
        counts = " ".join(f"{label}={n}" for label, n in info["class_counts"].items())
        lines.append(f"  {split:<10} {info['clips']:>6} clips  {len(info['speakers']):>4} speakers  {len(info['shards'])} shard(s)  {counts}")
    if manifest["excluded"]:
        counts = " ".join(f"{label}={n}" for label, n in manifest["excluded"].items())
        lines.append(f"excluded {sum(manifest['excluded'].values())} clip(s) whose emotion is outside the label set (not errors): {counts}")
    skipped = manifest["skipped"]
    if skipped:
        lines.append(f"skipped {len(skipped)} file(s):")
        lines += [f"  {s['path']}: {s['reason']}" for s in skipped[:20]]
        if len(skipped) > 20:
            lines.append(f"  ... and {len(skipped) - 20} more (see manifest.json)")
    if manifest["silent_clips"]:
        lines.append(f"{len(manifest['silent_clips'])} silent clip(s) kept as all-zero audio (see manifest.json)")
    if result.clips_processed:
        lines.append(f"{result.clips_processed} clips in {result.seconds:.1f} s ({result.clips_per_second:.1f} clips/s)")
    return "\n".join(lines)


@reports_errors(writes_to="output_dir")
def main(argv: list[str]) -> None:
    from kser_tfrecords_builder import build_records

    result = build_records(config_from_flags())
    print(summary(result))
    warnings = result.manifest["warnings"]
    for warning in warnings[:MAX_WARNING_LINES]:
        print(f"{argv[0]}: warning: {warning['message']}", file=sys.stderr)
    if len(warnings) > MAX_WARNING_LINES:
        print(f"{argv[0]}: ... and {len(warnings) - MAX_WARNING_LINES} more warning(s) in manifest.json", file=sys.stderr)
