"""Clips prepared in spawned worker processes, results in plan order; a worker that dies is a
one-line error naming the clip it was preparing.

Why not ``multiprocessing.Pool``: when one of its workers dies (killed, out of memory) it starts
another but loses the dead one's task, so a build waited for that result forever. Here every
worker has its own pipe: the parent knows which clips each one holds, notices a death through
the process's sentinel and stops at once. The shards finished before keep their receipts
(:mod:`kser_tfrecords_builder.state`), so running the same command again resumes.

Workers are spawned, not forked: the parent may already hold TensorFlow's threads.
"""

from __future__ import annotations

import collections
import multiprocessing
import signal
import traceback
from multiprocessing.connection import Connection, wait
from typing import Iterable, Iterator

from kser.errors import KserError
from kser_tfrecords_builder.worker import ClipResult, ClipTask, process_clip

# Clips sent ahead to each worker: enough to keep it busy while the parent writes, and a bound
# on the results held for reordering (at most workers x this many).
IN_FLIGHT_PER_WORKER = 8


def _serve(connection: Connection) -> None:
    """A worker's loop: a task in, (True, result) or (False, traceback text) out, until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends the workers
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        try:
            reply = (True, process_clip(task))
        except Exception:  # process_clip turns bad files into skips; this is a bug, with its traceback
            reply = (False, traceback.format_exc())
        try:
            connection.send(reply)
        except OSError:  # the parent stopped listening: the build has ended
            return


class _Worker:
    """One worker process, its pipe, and the (sequence number, task) pairs sent to it, oldest first."""

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True, name="kser-decoder")
        self.process.start()
        child.close()
        self.queued: collections.deque[tuple[int, ClipTask]] = collections.deque()

    def send(self, number: int, task: ClipTask) -> None:
        self.queued.append((number, task))
        try:
            self.connection.send(task)
        except OSError:  # a broken pipe: it has died
            raise self.death() from None

    def receive(self) -> tuple[int, ClipResult]:
        try:
            ok, payload = self.connection.recv()
        except (EOFError, OSError):
            raise self.death() from None
        number, task = self.queued.popleft()
        if not ok:
            raise RuntimeError(f"preparing {task.clip.path} failed in a decoding worker:\n{payload}")
        return number, payload

    def death(self) -> KserError:
        """The one line that says this worker died, and on which clip."""
        self.process.join(timeout=5)
        code = self.process.exitcode
        how = (
            "died" if code is None
            else f"was killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals()
            else f"exited with status {code}"
        )
        where = f" while preparing {self.queued[0][1].clip.path}" if self.queued else ""
        return KserError(f"decoding worker (pid {self.process.pid}) {how}{where}; run the same command again to resume")

    def close(self) -> None:
        """An idle worker sees EOF and returns; one still holding clips (the build failed) is killed."""
        if self.queued:
            self.process.kill()
        self.connection.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def prepared_in_workers(tasks: Iterable[ClipTask], workers: int) -> Iterator[ClipResult]:
    """``process_clip`` of every task, in the tasks' order, computed by ``workers`` processes.
    KserError when one of them dies."""
    context = multiprocessing.get_context("spawn")
    pool = [_Worker(context) for _ in range(workers)]
    try:
        yield from _ordered(iter(tasks), pool)
    finally:
        for worker in pool:
            worker.close()


def _ordered(tasks: Iterator[ClipTask], pool: list[_Worker]) -> Iterator[ClipResult]:
    sent = wanted = 0
    finished: dict[int, ClipResult] = {}
    exhausted = False
    while True:
        for worker in pool:
            while not exhausted and len(worker.queued) < IN_FLIGHT_PER_WORKER:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                    break
                worker.send(sent, task)
                sent += 1
        if wanted in finished:
            yield finished.pop(wanted)
            wanted += 1
            continue
        if wanted == sent and exhausted:
            return
        by_handle = {handle: worker for worker in pool for handle in (worker.connection, worker.process.sentinel)}
        for handle in wait(list(by_handle)):
            worker = by_handle[handle]
            while worker.queued and worker.connection.poll():  # results sent before a death still count
                number, result = worker.receive()
                finished[number] = result
            if handle == worker.process.sentinel:
                raise worker.death()
