"""Audio folder -> sharded TFRecords of prepared (normalised, fixed-length, noise-injected) waveforms."""

from kser_tfrecords_builder.builder import BuildResult, build_records

__all__ = ["BuildResult", "build_records"]
