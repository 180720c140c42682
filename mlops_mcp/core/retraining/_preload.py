"""Imported ONLY by the multiprocessing fork server that starts retraining children (see
``runner.children``): never import it elsewhere. It points file descriptor 1 at stderr first (in
stdio mode the server's stdout is the MCP stream, and a child must never write into it), then
imports what a retraining job needs, so that each job's child is forked ready in ~0.1 s instead of
paying several seconds of imports."""

import os

os.dup2(2, 1)

import mlflow  # noqa: E402,F401
import mlflow.sklearn  # noqa: E402,F401
import mlflow.store.model_registry.sqlalchemy_store  # noqa: E402,F401
import mlflow.store.tracking.sqlalchemy_store  # noqa: E402,F401
import pandas  # noqa: E402,F401
import pyarrow.parquet  # noqa: E402,F401
import sklearn.ensemble  # noqa: E402,F401
import sklearn.linear_model  # noqa: E402,F401
import sklearn.model_selection  # noqa: E402,F401
import sqlalchemy  # noqa: E402,F401

import mlops_mcp.core.experiments.offline  # noqa: E402,F401
import mlops_mcp.core.models.registry  # noqa: E402,F401
import mlops_mcp.core.models.training  # noqa: E402,F401
import mlops_mcp.core.retraining.child  # noqa: E402,F401
import mlops_mcp.core.retraining.data  # noqa: E402,F401
import mlops_mcp.core.retraining.gate  # noqa: E402,F401
import mlops_mcp.core.store.tables  # noqa: E402,F401
