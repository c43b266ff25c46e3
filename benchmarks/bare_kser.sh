#!/usr/bin/env bash
# `kser COMMAND ...` on a machine where kser is not installed and TensorFlow is absent: the lent
# GPU machines, which have Python, numpy, JAX, absl-py, matplotlib and tensorboard. kser runs there on
# Keras's JAX backend (records read by kser.pydataset), so a GPU cross-validation is the product's own:
#
#   bash benchmarks/bare_kser.sh build-records --layout=ravdess --split=none --data_dir=D --output_dir=/tmp/R
#   bash benchmarks/bare_kser.sh cross-validate --arch=small --records_dir=/tmp/R --model_dir=$OUT/cv \
#       --folds=6 --novalidate --parallel_folds=6
#
# Beforehand, on a machine with pip and a network, fill .whl/ beside setup.py with the wheels that
# machine lacks (for Python 3.12 on x86-64: keras==3.15.1 namex optree soundfile cffi pycparser;
# `pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 ...`),
# and copy the corpus somewhere the command can read it.
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
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND="${KERAS_BACKEND:-jax}" PYTHONUNBUFFERED=1
exec python3 -m kser_cli.main "$@"
