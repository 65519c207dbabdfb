"""Where training runs: one device, every GPU of one machine, or several machines (workers).

`--strategy multiworker` is TensorFlow's `MultiWorkerMirroredStrategy`: every worker runs the same
command, holds a copy of the model and trains on its own share of the rows; gradients are summed
across workers after every batch, so `--batch-size` stays the global batch. The cluster comes from
`TF_CONFIG` (a JSON object: `cluster.worker` lists "host:port" of every worker, `task.index` says
which one this is), or from Slurm's variables when run under `srun` without `TF_CONFIG`.

Worker 0 (or a task of type "chief") is the chief: it alone writes the model, history, settings,
run backup and caches; the others write nothing. Before training every worker compares a digest of
its options, data and resume point with the others' (a mismatch stops all of them with one line),
and TensorFlow's health check stops the survivors when a worker dies.

The strategy must exist before TensorFlow runs its first operation: scripts that use TensorFlow
before training (teachers, self-labelling) call `get_strategy` first.
"""

import functools
import json
import os
import socket

from common import backend  # noqa: F401  (TensorFlow loads quietly, before Keras)
import numpy as np
import tensorflow as tf

from common.errors import BadValue, RunFailed, UsageError

WORKER_WAIT_SECONDS = 600  # how long workers wait for each other, at start-up and in each exchange


@functools.cache
def get_strategy(name):
    """The one distribution strategy of this process for `--strategy name`, made on first use."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return _multi_worker_strategy()
    return tf.distribute.get_strategy()


def _multi_worker_strategy():
    """MultiWorkerMirroredStrategy over the cluster TF_CONFIG (or else Slurm) describes; waits at
    most WORKER_WAIT_SECONDS for every worker to start and for every exchange between them."""
    if "TF_CONFIG" not in os.environ and "SLURM_JOB_ID" in os.environ:
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver()
    else:
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if not resolver.cluster_spec().as_dict():
        raise BadValue("no cluster described for a multi-worker run; set TF_CONFIG (see the README's "
                       "multi-worker example) or run under Slurm's srun")
    try:  # the start-up wait is a class setting of TensorFlow's strategy (unbounded by default)
        from tensorflow.python.distribute import collective_all_reduce_strategy
        collective_all_reduce_strategy.CollectiveAllReduceExtended._check_health_initial_timeout = (
            WORKER_WAIT_SECONDS)
    except (ImportError, AttributeError):
        pass
    communication = tf.distribute.experimental.CommunicationOptions(timeout_seconds=WORKER_WAIT_SECONDS)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver,
                                                              communication_options=communication)
    except RuntimeError as error:
        raise RunFailed(f"the workers of a multi-worker run did not all start ({error}); start every worker "
                        f"within {WORKER_WAIT_SECONDS} s of the first") from None
    index, count = worker_index_and_count(strategy)
    print(f"worker {index} of {count}: " + ("the chief, it writes the results" if index == 0 else
                                            "writes nothing, the chief writes the results"), flush=True)
    return strategy


def local_cluster(count):
    """TF_CONFIG values for `count` workers on this machine, on localhost ports free right now
    (an OSError where none can be opened): for trying --strategy multiworker on one machine."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for handle in sockets:
            handle.bind(("localhost", 0))
        cluster = {"worker": [f"localhost:{handle.getsockname()[1]}" for handle in sockets]}
    finally:
        for handle in sockets:
            handle.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            for index in range(count)]


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def worker_index_and_count(strategy):
    """(this worker's place 0..count-1 with the chief first, the number of workers); (0, 1) on one
    machine."""
    if not is_multi_worker(strategy):
        return 0, 1
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict()
    chiefs = len(cluster.get("chief", ()))
    workers = len(cluster.get("worker", ()))
    index = resolver.task_id if resolver.task_type == "chief" else chiefs + resolver.task_id
    return index, chiefs + workers


def is_chief(strategy):
    """Whether this process writes the results (always, outside a multi-worker run)."""
    return worker_index_and_count(strategy)[0] == 0


def check_batch_size(strategy, batch_size):
    """The global batch must split evenly over the replicas of every worker."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise BadValue(f"{batch_size} images per batch must be a multiple of the {replicas} replicas "
                       f"training together (e.g. {batch_size - batch_size % replicas or replicas})")


def check_workers_agree(strategy, config, arrays, finished_epochs):
    """Compares a digest of what this worker is about to train (its `config`, its data `arrays`, the
    epoch it resumes after) with the chief's; a UsageError on every
    worker names the workers that differ. Outside a multi-worker run there is nothing to compare."""
    if not is_multi_worker(strategy):
        return
    digest = config.digest(finished_epochs)
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    local = tf.constant([list(digest.digest()[:16])], tf.float32)  # (1, 16) byte values, exact in float32
    every_worker = _gather_from_every_replica(strategy, local)  # (replicas, 16)
    replicas_per_worker = len(every_worker) // worker_index_and_count(strategy)[1]
    differing = sorted({index // replicas_per_worker
                        for index, row in enumerate(every_worker) if not np.array_equal(row, every_worker[0])})
    if differing:
        raise UsageError(f"worker(s) {', '.join(map(str, differing))} differ from the chief of the multi-worker "
                         f"run in options, data or the epoch to resume after; start every worker with the "
                         f"same command and data, and a shared output folder for resuming")


def prepare_for_workers(model, strategy, batch_shapes):
    """Makes a compiled `model` trainable with Keras 3's `fit` under MultiWorkerMirroredStrategy,
    whose two multi-worker steps fail as released (keras-team/keras#20585): `fit` builds the
    training state by averaging a first (inputs, targets) batch across workers, which fails on the
    pair, so the state is built here from a placeholder batch of `batch_shapes`; and each step's
    logged loss and metrics are averaged across workers along an axis 0 that scalars lack, so the
    steps return them as 1-element vectors. Nothing changes outside a multi-worker run."""
    if not is_multi_worker(strategy):
        return
    with strategy.scope():
        model._symbolic_build(data_batch=tuple(np.zeros(shape, np.float32) for shape in batch_shapes))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    train_step, test_step = model.train_step, model.test_step
    model.train_step = lambda batch: _as_vectors(train_step(batch))
    model.test_step = lambda batch: _as_vectors(test_step(batch))


def _as_vectors(logs):
    return {name: tf.reshape(value, (1,)) for name, value in logs.items()}


def wait_for_every_worker(strategy):
    """Returns once every worker has come here: the chief then leaves no worker behind mid-exchange
    (a worker whose chief has exited is stopped by TensorFlow)."""
    if is_multi_worker(strategy):
        _gather_from_every_replica(strategy, tf.zeros((1, 1)))


def _gather_from_every_replica(strategy, local):
    """Every replica's `local` (1, n) tensor stacked, (replicas, n), on every worker."""

    @tf.function(autograph=False)
    def gather():
        return strategy.gather(strategy.run(tf.identity, args=(local,)), axis=0)

    return gather().numpy()


def shard_rows(rows, shard_count, shard_index):
    """This worker's rows: every `shard_count`-th one from `shard_index`, cut to the same length on
    every worker (so all of them run the same number of batches)."""
    return rows[shard_index::shard_count][: len(rows) // shard_count]


def describe_lost_worker(error, finished_epochs):
    """The one line saying that another worker stopped answering."""
    return (f"another worker stopped answering (TensorFlow's {type(error).__name__}); nothing more was "
            f"saved. Restart every worker with the same command to continue after epoch {finished_epochs}")


LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                      tf.errors.CancelledError)
