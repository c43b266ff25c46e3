"""kser.event_writer writes what tf.summary writes: TensorFlow's reader sees the same scalars and images."""

import numpy as np

from kser.event_writer import EventWriter


def _values(run_dir):
    import tensorflow as tf

    found = []
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            found += [(event.step, value) for value in event.summary.value]
    return found


def test_scalars_and_images_read_back_through_tensorflow_as_tf_summary_writes_them(tmp_path):
    import tensorflow as tf

    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    ours = EventWriter(tmp_path / "ours")
    ours.scalar("epoch_loss", 0.25, step=3)
    ours.image("confusion_matrix", image, step=3)
    ours.close()
    with tf.summary.create_file_writer(str(tmp_path / "tf")).as_default(step=3):
        tf.summary.scalar("epoch_loss", 0.25)
        tf.summary.image("confusion_matrix", image[np.newaxis])

    mine, theirs = _values(tmp_path / "ours"), _values(tmp_path / "tf")
    assert [(step, value.tag, value.metadata.plugin_data.plugin_name) for step, value in mine] == [
        (step, value.tag, value.metadata.plugin_data.plugin_name) for step, value in theirs
    ]
    (_, scalar), (_, picture) = mine
    assert float(tf.make_ndarray(scalar.tensor)) == float(tf.make_ndarray(theirs[0][1].tensor)) == 0.25
    width, height, png = tf.make_ndarray(picture.tensor)
    assert (int(width), int(height)) == (40, 30)
    np.testing.assert_array_equal(tf.io.decode_png(png).numpy()[..., :3], image)


def test_nothing_is_written_until_something_is_logged(tmp_path):
    writer = EventWriter(tmp_path / "run")
    writer.flush()
    writer.close()
    assert not (tmp_path / "run").exists()
