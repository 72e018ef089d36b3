"""Checkpoints of the engine's shared models in the worker's data directory.

Customer states live in the changelog-backed table; the models every customer
shares (population baseline, behaviour model, churn model) live in the engine
and would start from scratch on a restart. The worker saves them to
``<data_dir>/models.pkl`` every ``checkpoint_interval_s`` and at shutdown, and
loads them at start. The file is written atomically (a temporary file renamed
into place). It is a pickle (River models are only picklable): it is read
only from the worker's own data directory, never from the network.

A checkpoint that cannot be loaded (corrupt, truncated, written by another
models version) is logged, counted in ``anomon_checkpoint_errors{op="load"}``
and ignored: the worker starts with fresh models and overwrites it with a good
one at the next checkpoint; the bad file is kept as ``models.pkl.bad``. It
never stops the worker, so it cannot cause a crash loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from pathlib import Path

from anomon.core.engine import Engine
from anomon.kafka.logs import kv
from anomon.worker import metrics

log = logging.getLogger("anomon.worker.checkpoint")

FILE_NAME = "models.pkl"


def checkpoint_path(data_dir: Path) -> Path:
    """Where the models of the worker with ``data_dir`` are saved."""
    return Path(data_dir) / FILE_NAME


def save_models(engine: Engine, path: Path) -> bool:
    """Write the engine's shared models to ``path``; ``False`` (and a log line) on failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as fh:
            pickle.dump(engine.models_state(), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as err:
        metrics.CHECKPOINT_ERRORS.labels("save").inc()
        log.warning("models checkpoint not saved %s", kv(path=path, error=repr(err)))
        tmp.unlink(missing_ok=True)
        return False
    return True


def load_models(engine: Engine, path: Path) -> bool:
    """Load a checkpoint into ``engine`` if there is a usable one at ``path``."""
    if not path.exists():
        return False
    try:
        with path.open("rb") as fh:
            data = pickle.load(fh)
        engine.load_models_state(data)
    except Exception as err:  # a bad checkpoint must not stop the worker: start fresh
        metrics.CHECKPOINT_ERRORS.labels("load").inc()
        kept = path.with_name(path.name + ".bad")
        with contextlib.suppress(OSError):  # kept aside for a look, out of the next start's way
            os.replace(path, kept)
        log.warning("models checkpoint ignored, starting with fresh models %s",
                    kv(path=path, kept_as=kept.name, error=repr(err)[:300]))
        return False
    log.info("models checkpoint loaded %s", kv(path=path))
    return True
