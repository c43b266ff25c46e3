"""TensorBoard event files without TensorFlow: scalars and images, as ``tf.summary`` writes them.

Why: Keras's ``TensorBoard`` callback imports ``tensorflow.summary``, so under JAX on a machine
without TensorFlow a run would have no TensorBoard at all. The ``tensorboard`` package (a base
requirement) carries the event-file writer and the protocol buffers on its own; this module writes
the same records that ``tf.summary.scalar`` and ``tf.summary.image`` write (a float32 scalar tensor
under the ``scalars`` plugin; a ``[width, height, png]`` string tensor under ``images``), so
TensorBoard and TensorFlow's readers see no difference.
"""

from __future__ import annotations

import io
import os
import time
from typing import Any

import numpy as np

SCALARS_PLUGIN = "scalars"
IMAGES_PLUGIN = "images"


class EventWriter:
    """One TensorBoard run folder (``log_dir/train``, ``log_dir/validation``...), opened lazily."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = os.fspath(run_dir)
        self._file: Any = None

    def _writer(self) -> Any:
        if self._file is None:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            os.makedirs(self.run_dir, exist_ok=True)
            self._file = EventFileWriter(self.run_dir)
        return self._file

    def _add(self, value: Any, step: int) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        self._writer().add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary_pb2.Summary(value=[value])))

    def scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboard.compat.proto import summary_pb2, tensor_pb2, types_pb2

        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[float(value)])
        self._add(summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=_metadata(SCALARS_PLUGIN)), step)

    def image(self, tag: str, rgb: np.ndarray, step: int) -> None:
        """One ``uint8`` image ``[height, width, 3]``, stored as PNG."""
        from matplotlib import image as mpl_image
        from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

        rgb = np.asarray(rgb, dtype=np.uint8)
        buffer = io.BytesIO()
        mpl_image.imsave(buffer, rgb, format="png")
        height, width = rgb.shape[:2]
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=3)]),
            string_val=[str(width).encode(), str(height).encode(), buffer.getvalue()],
        )
        self._add(summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=_metadata(IMAGES_PLUGIN)), step)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _metadata(plugin: str) -> Any:
    from tensorboard.compat.proto import summary_pb2

    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))
