# kser: `make demo` runs the main job on synthetic demo data; `make test` runs the test suite.
# Both create their own virtual environments, so they work on a fresh machine with Python >= 3.10.

PYTHON    ?= python3
VENV      ?= .venv
VENV_TFIO ?= .venv-tfio
VENV_JAX  ?= .venv-jax
DEMO_DIR  ?= demo
DEMO_EPOCHS ?= 40
PIP_FLAGS ?= -q --disable-pip-version-check
PYTEST    ?= -q
# The main and JAX suites spread over every core (pytest-xdist): most of their time is subprocesses
# starting TensorFlow or JAX, which a second core runs side by side. XDIST= runs them in one process.
XDIST     ?= -n auto --dist worksteal
# pip's notices on success (the editable install's build-backend warnings) go to VENV/pip.log,
# shown whole only when pip fails: a new user's terminal shows kser, not its installer.
QUIET_PIP = >> $(1)/pip.log 2>&1 || { cat $(1)/pip.log; exit 1; }

BIN      := $(VENV)/bin
BIN_TFIO := $(VENV_TFIO)/bin
BIN_JAX  := $(VENV_JAX)/bin
# Tests of the parts that tensorflow-io can change: decoding, resampling and record building.
TFIO_TESTS := tests/test_tfio.py tests/test_audio.py tests/test_build_records.py

.PHONY: install install-tfio install-jax test test-main test-tfio test-jax demo bench bench-accuracy clean

# One virtual environment: $(1) its folder, $(2) its pinned requirements, $(3) what it holds,
# $(4) optional requirements installed without their dependencies (requirements/hub.txt says why).
define MAKE_VENV
	@echo "installing $(3) into $(1) (a few minutes the first time; log: $(1)/pip.log)"
	$(PYTHON) -m venv $(1)
	@$(1)/bin/pip install $(PIP_FLAGS) --upgrade pip $(call QUIET_PIP,$(1))
	@$(1)/bin/pip install $(PIP_FLAGS) -r $(2) $(call QUIET_PIP,$(1))
	$(if $(4),@$(1)/bin/pip install $(PIP_FLAGS) --no-deps -r $(4) $(call QUIET_PIP,$(1)))
	@$(1)/bin/pip install $(PIP_FLAGS) --no-deps -e . $(call QUIET_PIP,$(1))
	touch $(1)/bin/.installed
endef

$(BIN)/.installed: setup.py pyproject.toml requirements/core.txt requirements/base.txt requirements/distributed.txt requirements/deploy.txt requirements/test.txt requirements/hub.txt
	$(call MAKE_VENV,$(VENV),requirements/test.txt,kser and its pinned packages,requirements/hub.txt)

$(BIN_TFIO)/.installed: setup.py pyproject.toml requirements/tfio.txt
	$(call MAKE_VENV,$(VENV_TFIO),requirements/tfio.txt,kser and its pinned packages)

# kser[jax] without TensorFlow: what a JAX-only machine gets.
$(BIN_JAX)/.installed: setup.py pyproject.toml requirements/core.txt requirements/jax.txt requirements/distributed.txt
	$(call MAKE_VENV,$(VENV_JAX),requirements/jax.txt,kser[jax] without TensorFlow)

install: $(BIN)/.installed

install-tfio: $(BIN_TFIO)/.installed

install-jax: $(BIN_JAX)/.installed

test: test-main test-tfio test-jax

test-main: install
	$(BIN)/python -m pytest $(PYTEST) $(XDIST) tests

test-tfio: install-tfio
	$(BIN_TFIO)/python -c "import kser.tfio_support as t, sys; sys.exit(0 if t.tfio_available() else 'tensorflow-io kernels failed to load in $(VENV_TFIO)')"
	$(BIN_TFIO)/python -m pytest $(PYTEST) $(TFIO_TESTS)

# Build, train, cross-validate and evaluate on Keras's JAX backend where TensorFlow is not installed;
# the records are compared byte for byte with the main environment's build.
test-jax: install install-jax
	$(BIN_JAX)/python -c "import importlib.util as u, sys; sys.exit('TensorFlow is installed in $(VENV_JAX)' if u.find_spec('tensorflow') else 0)"
	KERAS_BACKEND=jax KSER_REFERENCE_KSER=$(abspath $(BIN))/kser $(BIN_JAX)/python -m pytest $(PYTEST) $(XDIST) tests/test_without_tensorflow.py

demo: install
	$(BIN)/kser demo-data --out=$(DEMO_DIR)/audio
	$(BIN)/kser build-records --data_dir=$(DEMO_DIR)/audio --output_dir=$(DEMO_DIR)/records
	$(BIN)/kser train --arch=small --records_dir=$(DEMO_DIR)/records --model_dir=$(DEMO_DIR)/model \
		--epochs=$(DEMO_EPOCHS) --seed=0 --overwrite
	$(BIN)/kser evaluate --model_dir=$(DEMO_DIR)/model --records_dir=$(DEMO_DIR)/records --split=test
	$(BIN)/kser export --model_dir=$(DEMO_DIR)/model --export_dir=$(DEMO_DIR)/export --overwrite
	@echo "predicting one held-out clip per emotion (the test split's speakers, never trained on):"
	$(BIN)/python -m kser_cli.demo_predictions $(DEMO_DIR)/records $(DEMO_DIR)/audio $(DEMO_DIR)/export
	@echo
	@echo "demo done:"
	@echo "  records      $(DEMO_DIR)/records/manifest.json"
	@echo "  TensorBoard  $(BIN)/tensorboard --logdir $(DEMO_DIR)/model/logs"
	@echo "  report       $(DEMO_DIR)/model/eval/report.json (+ confusion_matrix.png, training_curves.png)"
	@echo "  SavedModel   $(DEMO_DIR)/export   (any audio: $(BIN)/kser predict --export_dir=$(DEMO_DIR)/export FILE...)"

bench: install
	$(BIN)/python benchmarks/build_records.py --out=benchmarks/results
	$(BIN)/python benchmarks/features_pipeline.py --out=benchmarks/results
	$(BIN)/python benchmarks/train_step.py --out=benchmarks/results
	$(BIN)/python benchmarks/predict_batching.py --out=benchmarks/results
	$(BIN)/python benchmarks/validation_pass.py --out=benchmarks/results
	$(BIN)/python benchmarks/distributed.py --out=benchmarks/results
	$(BIN)/python benchmarks/deploy.py --out=benchmarks/results

# Speaker cross-validation on real speech (../shared/data/ravdess16k): hours on 2 cores; not part of CI.
bench-accuracy: install
	$(BIN)/python benchmarks/accuracy.py --out=benchmarks/results

clean:
	rm -rf $(VENV) $(VENV_TFIO) $(VENV_JAX) $(DEMO_DIR) .pytest_cache build *.egg-info
