#!/usr/bin/env bash
# Runs benchmarks/accelerator_cv.py on a GPU machine that has Python, numpy and JAX but neither
# TensorFlow nor kser installed (the project's lent GPU machines). Arguments go to the script.
#
# Beforehand, on a machine with pip and a network, fill .whl/ beside setup.py with the wheels that
# machine lacks (for Python 3.12 on x86-64: keras==3.15.1 namex optree soundfile cffi pycparser;
# `pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 ...`),
# and copy the corpus somewhere the command can read it (--data_dir).
set -euo pipefail
cd "$(dirname "$0")/.."
site=$(mktemp -d)
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl
fi
# setup.py installs tfrecords_builder and cli as the packages kser_tfrecords_builder and kser_cli;
# without an install, link those names to the folders.
ln -s "$PWD/tfrecords_builder" "$site/kser_tfrecords_builder"
ln -s "$PWD/cli" "$site/kser_cli"
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax PYTHONUNBUFFERED=1
exec python3 benchmarks/accelerator_cv.py "$@"
