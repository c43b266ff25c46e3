"""kser.crc and kser.tfrecord_format: the same bytes as TensorFlow's writer and protobuf, without them."""

import hashlib
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from kser.config import AudioConfig, BuildConfig, RecordsConfig
from kser.crc import crc32c, crc32c_loop, crc32c_numpy
from kser.quiet import tensorflow
from kser.records import make_example, parse_example, parse_example_numpy
from kser.tfrecord_format import BYTES, FLOAT, INT64, RecordError, RecordWriter, decode_example, encode_example, read_records
from tests.cli_runner import REPO, kser_env
from tests.synthetic import write_crema_d


def tf_example(features: dict) -> bytes:
    """TensorFlow's own serialization of ``features`` ({name: (kind, values)}), as kser wrote it before."""
    tf = tensorflow()
    lists = {BYTES: tf.train.BytesList, FLOAT: tf.train.FloatList, INT64: tf.train.Int64List}
    feature = {name: tf.train.Feature(**{kind: lists[kind](value=list(values))}) for name, (kind, values) in features.items()}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def tf_writer(path):
    return tensorflow().io.TFRecordWriter(str(path))


def random_clip(rng: np.random.Generator, **overrides) -> dict:
    clip = dict(
        waveform=rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes(),
        scale=float(rng.standard_normal()),
        label=int(rng.integers(-(2**63), 2**63 - 1)),
        speaker=f"s{rng.integers(100)}",
        clip_id=f"clip_{rng.integers(10**6)}",
        sample_rate=int(rng.integers(0, 2**31)),
        source_samples=int(rng.integers(0, 2**40)),
    )
    clip.update(overrides)
    return clip


def test_crc32c_known_vectors_and_both_paths_agree():
    assert crc32c(b"123456789") == crc32c_numpy(b"123456789") == crc32c_loop(b"123456789") == 0xE3069283
    assert crc32c_numpy(b"") == 0
    assert crc32c_numpy(bytes(32)) == 0x8A9136AA  # RFC 3720, B.4
    assert crc32c_numpy(b"\xff" * 32) == 0x62A8AB43
    assert crc32c_numpy(bytes(range(32))) == 0x46DD794E
    rng = np.random.default_rng(0)
    for size in (1023, 1024, 1025, 1280, 4096 + 3, 96_044, 300_001):  # around the row, threshold and fold sizes
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert crc32c_numpy(data) == crc32c_loop(data), size


def test_records_round_trip_and_match_tf_io_byte_for_byte(tmp_path):
    tf = tensorflow()
    records = [b"", b"x", bytes(range(256)) * 400, "é".encode() * 7]
    with RecordWriter(tmp_path / "pure.tfrecord") as writer:
        for record in records:
            writer.write(record)
    with tf_writer(tmp_path / "tf.tfrecord") as writer:
        for record in records:
            writer.write(record)
    assert (tmp_path / "pure.tfrecord").read_bytes() == (tmp_path / "tf.tfrecord").read_bytes()
    assert list(read_records(tmp_path / "pure.tfrecord")) == records
    assert [item.numpy() for item in tf.data.TFRecordDataset(str(tmp_path / "pure.tfrecord"))] == records


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


@pytest.mark.parametrize(
    "damage, message",
    [  # two records of 12 + 5 + 4 bytes: the second starts at byte 21
        (lambda data: data[:3], "truncated record header at byte 0"),
        (lambda data: data[:25], "truncated record header at byte 21"),
        (lambda data: data[:-1], "truncated record at byte 21 (5 bytes announced)"),
        (lambda data: flip(data, 21), "corrupt record length at byte 21 (checksum mismatch)"),
        (lambda data: flip(data, 33), "corrupt record data at byte 21 (checksum mismatch)"),
        (lambda data: flip(data, 40), "corrupt record data at byte 21 (checksum mismatch)"),
    ],
)
def test_a_damaged_file_names_the_file_and_the_byte(tmp_path, damage, message):
    path = tmp_path / "shard.tfrecord"
    with RecordWriter(path) as writer:
        writer.write(b"abcde")
        writer.write(b"fghij")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(RecordError) as raised:
        list(read_records(path))
    assert str(raised.value) == f"{path}: {message}"


def test_examples_equal_tensorflows_on_random_and_edge_values():
    rng = np.random.default_rng(1)
    clips = [random_clip(rng) for _ in range(20)] + [
        random_clip(rng, speaker="", clip_id="", waveform=b""),
        random_clip(rng, speaker="actrice é", clip_id="片段_01", label=-1, source_samples=2**63 - 1),
        random_clip(rng, label=-(2**63), sample_rate=0, scale=1.0),
        random_clip(rng, waveform=np.float32([0.5, -1e-30, 3e38]).tobytes(), scale=1.0),
        random_clip(rng, scale=1e-45, label=127),
        random_clip(rng, scale=-0.0, label=128),
    ]
    for clip in clips:
        ours = make_example(**clip)
        theirs = tf_example(
            {
                "waveform": (BYTES, [clip["waveform"]]),
                "waveform_scale": (FLOAT, [clip["scale"]]),
                "label": (INT64, [clip["label"]]),
                "speaker": (BYTES, [clip["speaker"].encode()]),
                "clip_id": (BYTES, [clip["clip_id"].encode()]),
                "sample_rate": (INT64, [clip["sample_rate"]]),
                "source_samples": (INT64, [clip["source_samples"]]),
            }
        )
        assert ours == theirs, clip


def test_any_features_encode_like_tensorflow_and_decode_back():
    """Prefix keys (upb puts the longer first), several values, empty lists, non-ASCII names."""
    rng = np.random.default_rng(2)
    features = {
        "a": (INT64, [0, -5, 2**62, 300]),
        "ab": (FLOAT, [0.25, -3.5, float(np.float32(1 / 3))]),
        "abc": (BYTES, [b"", b"\x00\xff", "ü".encode()]),
        "b": (BYTES, []),
        "ba": (INT64, []),
        "é": (FLOAT, []),
        "Z": (BYTES, [rng.bytes(70_000)]),
    }
    serialized = encode_example(features)
    assert serialized == tf_example(features)
    assert decode_example(serialized) == {name: (kind, list(values)) for name, (kind, values) in features.items()}
    assert decode_example(tf_example({"x": (INT64, [7])})) == {"x": (INT64, [7])}
    with pytest.raises(ValueError, match="not a serialized tf.train.Example: field runs past the end"):
        decode_example(serialized[:-1])


@pytest.mark.parametrize("encoding, dtype", [("int16", "<i2"), ("float32", "<f4")])
def test_numpy_parse_equals_tensorflows(encoding, dtype):
    rng = np.random.default_rng(3)
    waveform = (rng.standard_normal(500) * (1000 if encoding == "int16" else 1)).astype(dtype).tobytes()
    serialized = make_example(**random_clip(rng, waveform=waveform, scale=0.001, speaker="é"))
    ours = parse_example_numpy(serialized, encoding)
    theirs = {name: value.numpy() for name, value in parse_example(serialized, encoding).items()}
    assert ours.keys() == theirs.keys()
    for name, value in theirs.items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)
        assert type(ours[name]) is type(value) and np.asarray(ours[name]).dtype == np.asarray(value).dtype, name
    with pytest.raises(ValueError, match="'waveform_scale' is missing"):
        parse_example_numpy(encode_example({"waveform": (BYTES, [b""])}), encoding)
    with pytest.raises(ValueError, match="'label': expected one int64_list value, found 2 float_list value"):
        parse_example_numpy(encode_example(dict(decode_example(serialized), label=(FLOAT, [1.0, 2.0]))), encoding)


BLOCKED_BUILD = """
import pickle, sys
sys.modules["tensorflow"] = None  # any `import tensorflow` now raises ImportError
from kser_tfrecords_builder import build_records
build_records(pickle.load(open(sys.argv[1], "rb")), progress_stream=open("/dev/null", "w"))
loaded = sorted(name for name, module in sys.modules.items() if module is not None and name.split(".")[0] in ("tensorflow", "keras", "jax"))
assert not loaded, loaded
"""


def test_a_build_without_tensorflow_writes_the_tf_io_builds_bytes(tmp_path, monkeypatch):
    """Built with TensorFlow unimportable, then with tf.io's writer and TF's protobuf swapped in:
    every shard has the same SHA-256, and each side's reader reads the other's shards."""
    import kser.records
    import kser_tfrecords_builder.builder
    from kser_tfrecords_builder import build_records

    data = tmp_path / "data"
    write_crema_d(data, actors=3, sentences=("DFA",))
    pure, reference = (
        BuildConfig(data_dir=str(data), output_dir=str(tmp_path / name), audio=AudioConfig(clip_seconds=0.5), records=RecordsConfig(num_shards=2), workers=1)
        for name in ("pure", "tf")
    )
    (tmp_path / "config.pickle").write_bytes(pickle.dumps(pure))
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_BUILD, str(tmp_path / "config.pickle")], cwd=REPO, env=kser_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]

    monkeypatch.setattr(kser.records, "encode_example", tf_example)
    monkeypatch.setattr(kser_tfrecords_builder.builder, "RecordWriter", tf_writer)
    build_records(reference, progress_stream=open("/dev/null", "w"))
    monkeypatch.undo()

    manifests = [json.loads((tmp_path / name / "manifest.json").read_text()) for name in ("pure", "tf")]
    shards = [shard for manifest in manifests for split in manifest["splits"].values() for shard in split["shards"]]
    assert len(shards) == 2 * 6
    assert shards[:6] == shards[6:]  # names, counts, sizes and checksums
    for shard in shards[:6]:
        digests = {hashlib.sha256((tmp_path / name / shard["name"]).read_bytes()).hexdigest() for name in ("pure", "tf")}
        assert digests == {shard["sha256"]}

    tf = tensorflow()
    for shard in shards[:6]:
        ours = [parse_example_numpy(record) for record in read_records(tmp_path / "tf" / shard["name"])]
        theirs = [parse_example(record) for record in tf.data.TFRecordDataset(str(tmp_path / "pure" / shard["name"]))]
        assert len(ours) == len(theirs) == shard["records"]
        for mine, other in zip(ours, theirs):
            for name, value in other.items():
                np.testing.assert_array_equal(mine[name], value.numpy(), err_msg=name)
