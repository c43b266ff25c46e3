"""kser: a Keras-native toolkit for speech emotion recognition.

Importing ``kser`` is cheap on purpose: TensorFlow, Keras and tensorflow-io are only
imported by the submodules that need them, so the record builder's worker processes
and ``kser --help`` start fast.
"""

__version__ = "0.1.0"

from kser.keras_objects import register_when_keras_loads as _register_when_keras_loads  # noqa: E402

# ``keras.saving.load_model("M/model.keras")`` works after ``import kser``, without making this
# import load Keras: kser's layers are registered once Keras is loaded (kser.keras_objects).
_register_when_keras_loads()
