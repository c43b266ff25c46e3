"""kser: a Keras-native toolkit for speech emotion recognition.

Importing ``kser`` is cheap on purpose: TensorFlow, Keras and tensorflow-io are only
imported by the submodules that need them, so the record builder's worker processes
and ``kser --help`` start fast.
"""

__version__ = "0.1.0"
