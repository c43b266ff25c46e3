"""Data-parallel training on several devices or hosts: which engine runs each mode, and why.

``kser train --distribution=MODE`` (and ``kser cross-validate``):

- ``none``: one device, as TensorFlow places it.
- ``mirrored``: one host, several devices (every local GPU, or ``--devices``), with
  ``tf.distribute.MirroredStrategy`` on the default TensorFlow backend. Keras 3's ``fit`` works
  with it; each step's global batch is split over the replicas and the gradients all-reduced.
- ``multi_worker``: several processes or hosts, with ``keras.distribution.DataParallel`` on the
  **JAX** backend. Why not TensorFlow: ``tf.distribute.MultiWorkerMirroredStrategy`` fails inside
  Keras 3's ``fit`` (a PerReplica batch reaches ``_maybe_symbolic_build``, then a scalar metric is
  reduced over axis 0; keras-team/keras#20585 and tensorflow#72388 are open), so TensorFlow has no
  working multi-host path for Keras 3 models. Keras's own multi-host route is
  ``keras.distribution`` on JAX: the whole step is one SPMD program over the global batch, so the
  loss, the metrics (and early stopping, which must decide the same on every host) and even
  BatchNormalization's batch statistics are exactly those of one process training on the same
  global batch (measured here: weights equal to 1e-7). The cluster comes from the standard
  ``TF_CONFIG`` variable whatever the engine; JAX is an extra (``pip install 'kser[distributed]'``).
- ``auto``: ``multi_worker`` when ``TF_CONFIG`` names more than one task, ``mirrored`` when
  TensorFlow sees more than one GPU, else ``none``.

``--batch_size`` is always the global batch: under ``multi_worker`` each of N workers reads
``batch_size / N`` clips per step from its own shard files (:func:`worker_files`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from kser.config import DistributionConfig
from kser.errors import KserError
from kser.quiet import native_logs_wanted

MODES = ("auto", "none", "mirrored", "multi_worker")
TF_CONFIG_ENV = "TF_CONFIG"
# Task types that take part in synchronous data-parallel training, in process-id order.
_TRAINING_TASKS = ("chief", "worker")
_DEVICE_NAME = re.compile(r"^(?:/device:|/)?(cpu|gpu):(\d+)$", re.IGNORECASE)
_INSTALL_HINT = "pip install 'kser[distributed]' (or make install)"


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The training processes of a ``TF_CONFIG``: every address in process-id order, and ours."""

    addresses: tuple[str, ...]
    process_id: int

    @property
    def num_processes(self) -> int:
        return len(self.addresses)

    @property
    def coordinator(self) -> str:
        """Process 0's address; JAX's coordination service listens there."""
        return self.addresses[0]


def cluster_from_tf_config(text: str | None) -> Cluster | None:
    """The cluster that a ``TF_CONFIG`` value describes, None when unset; KserError when malformed.

    ``{"cluster": {"chief": [...], "worker": [...]}, "task": {"type": "worker", "index": 1}}``:
    the chief (if any) is process 0, then the workers in order.
    """
    if not text or not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise KserError(f"{TF_CONFIG_ENV} is not valid JSON: {error}") from None
    if not isinstance(value, dict) or not isinstance(value.get("cluster"), dict) or not isinstance(value.get("task"), dict):
        raise KserError(f'{TF_CONFIG_ENV} must hold "cluster" and "task" objects, e.g. {{"cluster": {{"worker": ["host1:2222", "host2:2222"]}}, "task": {{"type": "worker", "index": 0}}}}')
    cluster, task = value["cluster"], value["task"]
    others = sorted(set(cluster) - set(_TRAINING_TASKS))
    if others:
        raise KserError(f"{TF_CONFIG_ENV} names task type(s) {', '.join(others)}; kser trains synchronously with chief and worker tasks only")
    addresses: list[str] = []
    first_of: dict[str, int] = {}
    for kind in _TRAINING_TASKS:
        members = cluster.get(kind, [])
        if not isinstance(members, list) or not all(isinstance(a, str) and re.fullmatch(r"[^\s:]+:\d+", a) for a in members):
            raise KserError(f"{TF_CONFIG_ENV} cluster.{kind} must be a list of host:port strings, got {members!r}")
        first_of[kind] = len(addresses)
        addresses += members
    if len(set(addresses)) != len(addresses):
        raise KserError(f"{TF_CONFIG_ENV} lists an address twice: {addresses}")
    kind, index = task.get("type"), task.get("index", 0)
    if isinstance(index, bool):  # True is an int in Python, and would pass as task 1
        raise KserError(f"{TF_CONFIG_ENV} task index must be a whole number, got {json.dumps(index)}")
    if kind not in _TRAINING_TASKS or not isinstance(index, int) or not 0 <= index < len(cluster.get(kind, [])):
        raise KserError(f"{TF_CONFIG_ENV} task {task!r} is not one of the cluster's chief or worker tasks")
    return Cluster(tuple(addresses), first_of[kind] + index)


def resolve_mode(mode: str, cluster: Cluster | None, gpu_count: Callable[[], int]) -> str:
    """``auto`` made concrete; the others are checked and returned."""
    if mode not in MODES:
        raise KserError(f"unknown --distribution {mode!r}; choose one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    if cluster is not None and cluster.num_processes > 1:
        return "multi_worker"
    return "mirrored" if gpu_count() > 1 else "none"


def parse_devices(names: Sequence[str]) -> tuple[str, ...]:
    """``GPU:0``-style names in TensorFlow's ``/device:GPU:0`` form; KserError on anything else."""
    parsed = []
    for name in names:
        match = _DEVICE_NAME.match(name.strip())
        if not match:
            raise KserError(f"--devices: {name!r} is not a device name such as GPU:0 or CPU:1")
        parsed.append(f"/device:{match.group(1).upper()}:{int(match.group(2))}")
    if len(set(parsed)) != len(parsed):
        raise KserError(f"--devices names a device twice: {', '.join(names)}")
    return tuple(parsed)


def worker_files(files: Sequence[str], num_workers: int, index: int) -> list[str] | None:
    """Worker ``index``'s share of ``files`` (every N-th), or None when there are fewer files than
    workers, so that a file would have to be read twice (the caller then shards per example)."""
    if num_workers <= 1:
        return list(files)
    if len(files) < num_workers:
        return None
    return list(files[index::num_workers])


@dataclasses.dataclass
class Distribution:
    """The distribution a run trains under: how many workers, which one this is, and the engine."""

    mode: str = "none"
    num_workers: int = 1
    worker_index: int = 0
    strategy: Any = None  # the tf.distribute strategy of "mirrored"
    replicas: int = 1  # devices that each step's global batch is split over
    keras_distribution: Any = None  # the keras.distribution of "multi_worker"

    def activate(self) -> None:
        """Make this the distribution that Keras builds and trains under (again: a
        ``keras.backend.clear_session()`` between cross-validation folds forgets it)."""
        if self.keras_distribution is not None:
            import keras

            keras.distribution.set_distribution(self.keras_distribution)

    @property
    def is_chief(self) -> bool:
        """Only the chief writes the model directory; other workers write nowhere persistent."""
        return self.worker_index == 0

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """Where the model, optimizer and metrics must be created."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def local_batch_size(self, global_batch: int) -> int:
        """Clips per step that this worker's pipeline yields for a global batch of ``global_batch``."""
        if self.num_workers == 1:
            return global_batch  # mirrored splits the global batch itself
        if global_batch % self.num_workers:
            raise KserError(f"--batch_size {global_batch} is the global batch and must divide evenly over {self.num_workers} workers")
        return global_batch // self.num_workers

    def data_seed(self, seed: int | None) -> int | None:
        """Each worker's own seed for shuffling, oversampling and mixup (worker 0 keeps ``seed``)."""
        if seed is None or self.worker_index == 0:
            return seed
        return (seed + 7_919 * self.worker_index) % 2**32

    def barrier(self, name: str) -> None:
        """Wait until every worker gets here (the chief prepares the model directory first)."""
        if self.num_workers > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(name)

    def prepare_shared(self, what: str, check: Callable[[], bool], write: Callable[[], None]) -> None:
        """Prepare something on shared storage: ``check`` runs on every worker while nobody writes
        (so all decide alike and a refusal is raised everywhere), then ``write`` runs on the chief
        alone when ``check`` returned True, and every worker waits for it."""
        self.barrier(f"kser: {what} checks start")
        needed = check()
        self.barrier(f"kser: {what} checked")
        if needed and self.is_chief:
            write()
        self.barrier(f"kser: {what} ready")

    @contextlib.contextmanager
    def chief_holds(self, lock: Callable[[], contextlib.AbstractContextManager[Any]]) -> Iterator[None]:
        """Hold ``lock()`` (a :mod:`kser.locks` lock) on the chief alone for the block: the workers
        write nowhere persistent. A refusal on the chief is raised on every worker, so that none
        waits at a barrier for a chief that has gone."""
        if self.num_workers == 1:
            with lock():
                yield
            return
        with contextlib.ExitStack() as held:
            refusal = None
            if self.is_chief:
                try:
                    held.enter_context(lock())
                except KserError as error:
                    refusal = error
            if self._from_chief(int(refusal is not None)):
                raise refusal or KserError("the chief refused to start this run; its output says why")
            yield

    def _from_chief(self, value: int) -> int:
        """The chief's ``value`` on every worker (a collective: every worker must call it)."""
        import numpy as np
        from jax.experimental import multihost_utils

        return int(multihost_utils.broadcast_one_to_all(np.asarray(value, dtype=np.int32)))

    def shared_seed(self, seed: int | None) -> int | None:
        """The seed that every worker initialises the weights with: ``seed``, or the chief's draw."""
        if seed is not None or self.num_workers == 1:
            return seed
        import numpy as np

        return self._from_chief(int(np.random.default_rng().integers(0, 2**31 - 1)))

    @contextlib.contextmanager
    def write_dir(self, model_dir: Path) -> Iterator[Path]:
        """Where this worker writes a run's files: ``model_dir`` on the chief; on any other worker
        a scratch folder, deleted afterwards. Workers other than the chief still save everything
        the chief saves: under JAX, Keras's saving code can run cross-process collectives, and a
        collective that one worker skips would hang the others."""
        if self.is_chief:
            yield model_dir
            return
        scratch = Path(tempfile.mkdtemp(prefix=f"kser-worker{self.worker_index}-"))
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    @property
    def share(self) -> tuple[int, int]:
        """``(worker index, workers)``: which share of the training data this process reads."""
        return self.worker_index, self.num_workers

    @contextlib.contextmanager
    def local(self) -> Iterator[None]:
        """Work that one process does alone (the chief's evaluation): no cross-worker distribution."""
        if self.mode != "multi_worker":
            yield
            return
        import keras

        active = keras.distribution.distribution()
        keras.distribution.set_distribution(None)
        try:
            yield
        finally:
            keras.distribution.set_distribution(active)


_ACTIVE: dict[str, Any] = {}  # the multi-worker runtime: JAX's distributed client starts once per process


def setup(config: DistributionConfig, log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> Distribution:
    """Start the engine that ``config`` asks for. Call before Keras is imported: ``multi_worker``
    selects Keras's JAX backend."""
    cluster = cluster_from_tf_config(os.environ.get(TF_CONFIG_ENV))
    devices = parse_devices(config.devices)
    mode = resolve_mode(config.mode, cluster, lambda: len(devices) or _gpu_count())  # checks the mode too
    if devices and config.mode not in ("mirrored", "auto"):
        raise KserError("--devices applies to --distribution=mirrored")
    if mode == "multi_worker":
        return _multi_worker(cluster, log)
    if mode == "mirrored":
        return _mirrored(devices)
    return Distribution()


def _gpu_count() -> int:
    if _keras_backend() != "tensorflow":
        return 0
    from kser.quiet import tensorflow

    return len(tensorflow().config.list_physical_devices("GPU"))


def _keras_backend() -> str:
    """The Keras backend in use, or the one that importing Keras will pick."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def _mirrored(devices: tuple[str, ...]) -> Distribution:
    if _keras_backend() != "tensorflow":
        raise KserError(f"--distribution=mirrored uses tf.distribute and needs Keras's TensorFlow backend, not {_keras_backend()!r}")
    from kser.quiet import tensorflow

    tf = tensorflow()
    _split_cpu(tf, devices)
    _check_devices_exist(tf, devices)
    strategy = tf.distribute.MirroredStrategy(list(devices) or None)
    return Distribution(mode="mirrored", strategy=strategy, replicas=strategy.num_replicas_in_sync)


def _split_cpu(tf: Any, devices: tuple[str, ...]) -> None:
    """``--devices=CPU:0,CPU:1`` on one CPU: split it into logical devices (for trying a
    multi-device setup on a machine without GPUs; it does not make training faster)."""
    wanted = 1 + max((int(name.rsplit(":", 1)[1]) for name in devices if ":CPU:" in name), default=0)
    cpus = tf.config.list_physical_devices("CPU")
    if wanted <= len(cpus):
        return
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current and len(current) >= wanted:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * wanted)
    except RuntimeError:
        raise KserError(f"--devices asks for {wanted} CPU devices, but TensorFlow has already started with {len(cpus)}") from None


def _check_devices_exist(tf: Any, devices: tuple[str, ...]) -> None:
    """Refuse a device TensorFlow does not have: MirroredStrategy would place a missing GPU's work
    on the CPU without a word, or wait in an all-reduce for it forever."""
    existing = [device.name for device in tf.config.list_logical_devices()]
    missing = [name for name in devices if name not in existing]
    if missing:
        raise KserError(f"--devices names {_short(missing)}, which this machine does not have; TensorFlow sees {_short(existing)}")


def _short(names: Sequence[str]) -> str:
    """``/device:GPU:0`` names as --devices spells them: ``GPU:0``."""
    return ", ".join(name.removeprefix("/device:") for name in names)


def _multi_worker(cluster: Cluster | None, log: Callable[[str], None]) -> Distribution:
    if cluster is None:
        raise KserError(f"--distribution=multi_worker needs the cluster in {TF_CONFIG_ENV} (see docs/distributed.md)")
    active = _ACTIVE.get("cluster")
    if active is not None:
        if active != cluster:
            raise KserError(f"this process already trains in cluster {active.addresses}; {TF_CONFIG_ENV} now says {cluster.addresses}")
        return _ACTIVE["distribution"]
    backend = _keras_backend()
    if backend != "jax":
        if "keras" in sys.modules or "KERAS_BACKEND" in os.environ:
            raise KserError(f"--distribution=multi_worker trains on Keras's JAX backend; this process uses {backend!r} (unset KERAS_BACKEND or set it to jax)")
        os.environ["KERAS_BACKEND"] = "jax"
    if not native_logs_wanted():  # JAX's start-up INFO lines (TPU probe, coordination service)
        logging.getLogger("jax").setLevel(logging.WARNING)
    try:
        import jax
    except ImportError:
        raise KserError(f"--distribution=multi_worker needs JAX: {_INSTALL_HINT}") from None
    log(
        f"kser: multi_worker runs on Keras's JAX backend (keras.distribution): process {cluster.process_id} "
        f"of {cluster.num_processes}, coordinator {cluster.coordinator}"
    )
    with contextlib.suppress(Exception):  # older jaxlib: CPU collectives across processes need gloo
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(cluster.coordinator, cluster.num_processes, cluster.process_id)
    import keras

    distribution = Distribution(
        mode="multi_worker",
        num_workers=cluster.num_processes,
        worker_index=cluster.process_id,
        replicas=len(jax.devices()),
        # Each worker feeds its own clips (kser.data shards the files), so no auto-sharding.
        keras_distribution=keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False),
    )
    distribution.activate()
    _ACTIVE.update(cluster=cluster, distribution=distribution)
    return distribution
