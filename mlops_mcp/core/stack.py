"""The heavy libraries, imported once and by one thread at a time.

The engine imports the ML stack lazily, so that the server starts fast. But the first seconds of a
server see parallel tool calls, each on its own worker thread, and MLflow's import graph has
cycles: two threads importing different MLflow submodules at once end in Python's import-lock
``_DeadlockError`` or in half-initialised modules ("cannot import name 'MlflowException'"). So every
part of the engine that needs the stack calls :func:`ensure` first; the first caller imports it
under a lock while the others wait, and from then on it is a dictionary lookup.

Two layers, always taken in this order (never the reverse, so no lock-order inversion): ``ml``
(pandas, scikit-learn, MLflow, ...) takes ``db`` (SQLAlchemy, Alembic) first, because MLflow
imports them too; the store needs only ``db``.
"""

import importlib
import threading

LAYERS: dict[str, tuple[str, ...]] = {
    "db": ("sqlalchemy", "sqlalchemy.orm", "alembic.command", "alembic.config"),
    "ml": (
        "numpy",
        "pandas",
        "pyarrow.parquet",
        "scipy.stats",
        "sklearn.pipeline",
        "sklearn.compose",
        "sklearn.preprocessing",
        "sklearn.impute",
        "sklearn.ensemble",
        "sklearn.linear_model",
        "sklearn.metrics",
        "sklearn.model_selection",
        "mlflow",
        "mlflow.exceptions",
        "mlflow.artifacts",
        "mlflow.models",
        "mlflow.pyfunc",
        "mlflow.sklearn",
    ),
    # the feature store needs the data libraries, never MLflow or scikit-learn
    "data": ("numpy", "pandas", "pyarrow.parquet", "pyarrow.csv"),
    "shap": ("shap",),
    "plot": ("matplotlib", "matplotlib.pyplot"),
}
#: what each layer needs loaded before it
REQUIRES: dict[str, tuple[str, ...]] = {"db": (), "data": ("db",), "ml": ("db",), "shap": ("ml",), "plot": ("ml",)}

_lock = threading.RLock()
_loaded: set[str] = set()


def ensure(layer: str) -> None:
    """Import ``layer`` (and what it needs) unless done; concurrent callers wait for the first."""
    if layer in _loaded:
        return
    with _lock:
        if layer in _loaded:
            return
        for needed in REQUIRES[layer]:
            ensure(needed)
        if layer == "plot":
            import matplotlib

            matplotlib.use("Agg")  # no display: charts are rendered to PNG
        for module in LAYERS[layer]:
            importlib.import_module(module)
        _loaded.add(layer)
