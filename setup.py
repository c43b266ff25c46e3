"""kser: Keras-native speech emotion recognition."""

import re
from pathlib import Path

from setuptools import find_packages, setup

# Import name -> folder, for the top-level folders whose names are too generic to install as such.
FOLDER_PACKAGES = {"kser_cli": "cli", "kser_tfrecords_builder": "tfrecords_builder"}
# Export to LiteRT and ONNX (kser.portable_export) and the runtimes that run the artefacts without
# TensorFlow; tf2onnx is what Keras's ONNX export converts with under the TensorFlow backend.
LITERT = ["ai-edge-litert>=2.3"]
ONNX = ["onnxruntime>=1.32", "onnx>=1.23", "tf2onnx>=1.17"]
VERSION = re.search(r'__version__ = "([^"]+)"', Path("kser/__init__.py").read_text()).group(1)

setup(
    name="kser",
    version=VERSION,
    description="Keras-native speech emotion recognition: records, in-graph features, models, training, export",
    long_description=Path("README.md").read_text(encoding="utf-8") if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # The folders cli/ and tfrecords_builder/ install under kser's own import names, so that
    # installing kser adds no generic top-level name (such as `cli`) to site-packages.
    packages=find_packages(include=["kser", "kser.*"]) + list(FOLDER_PACKAGES),
    package_dir=FOLDER_PACKAGES,
    # No Keras backend here: pick one with an extra. kser[tensorflow] is the design (tf.data input,
    # SavedModel/LiteRT/ONNX export) and what `make` installs (pinned, requirements/base.txt);
    # kser[jax] trains, cross-validates and evaluates without TensorFlow (kser.inputs says how).
    install_requires=[
        "keras>=3.3",
        "numpy>=1.26",
        "absl-py>=2.0",
        "tensorboard>=2.16",
        "soundfile>=0.12",
        "matplotlib>=3.7",
    ],
    extras_require={
        # tensorflow-cpu satisfies TensorFlow too.
        "tensorflow": ["tensorflow>=2.16"],
        "jax": ["jax>=0.10"],
        "tfio": ["tensorflow>=2.16", "tensorflow-io>=0.37"],
        # --distribution=multi_worker trains on Keras's JAX backend (kser.distribution says why).
        "distributed": ["jax>=0.10"],
        "litert": LITERT,
        "onnx": ONNX,
        "deploy": LITERT + ONNX,
        # --arch=whisper. On Linux keras-hub pulls tensorflow-text and with it the full `tensorflow`
        # package; `pip install --no-deps -r requirements/hub.txt` keeps tensorflow-cpu (README).
        "hub": ["keras-hub>=0.32"],
        "test": ["pytest>=8", "librosa>=0.10", "scikit-learn>=1.3"],
    },
    entry_points={"console_scripts": ["kser=kser_cli.main:run"]},
)
