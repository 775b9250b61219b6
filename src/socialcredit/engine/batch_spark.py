"""Apache Spark (PySpark) for the batch plan: the session, staging and fetching.

The plan is the same Ibis plan as on every other backend; Spark only differs in how stages are
kept and results fetched, and in its JSON dialect (``batch_json``):

* a stage is the DataFrame of its SQL, checkpointed locally (computed once, lineage cut) and
  registered as a temporary view (Spark has no ``CREATE TEMP TABLE ... AS``); closing drops the
  views;
* results come back through Arrow (``DataFrame.toArrow``).

:func:`session` gives the active SparkSession if there is one (``spark-submit`` on a cluster, or a
notebook), else starts a local one: ``local[2]``, no web UI, Arrow on, 1 GB driver memory, log4j
at ERROR and no console progress bars. Environment variables change the local defaults:
``SC_SPARK_MASTER`` (e.g. ``local[*]`` or ``spark://host:7077``), ``SC_SPARK_DRIVER_MEMORY`` and
``SC_SPARK_SHUFFLE_PARTITIONS``. :func:`stop` stops a session started here and ends its JVM.

pyspark is the optional ``spark`` extra (``uv sync --extra spark``; Java 17 must be installed).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa

__all__ = ["available", "session", "stop"]

_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
# the shell's level: when it differs from the root's, Spark prints "Setting default log level"
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
# code generation too large for one Java method falls back to interpretation by itself
logger.codegen.name = org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator
logger.codegen.level = off
"""

_lock = threading.Lock()
_started: Any = None  # the session started by :func:`session` (None if none, or not ours)
_log4j: Path | None = None


def available() -> bool:
    """Whether pyspark can be imported (the ``spark`` extra is installed)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return True


def _log4j_file() -> Path:
    global _log4j
    if _log4j is None or not _log4j.exists():
        fd, name = tempfile.mkstemp(prefix="socialcredit-log4j2-", suffix=".properties")
        with os.fdopen(fd, "w") as f:
            f.write(_LOG4J)
        _log4j = Path(name)
    return _log4j


def session() -> Any:
    """The active SparkSession, or a new local one (see the module docstring)."""
    global _started
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise RuntimeError(
            "the spark engine needs pyspark: install the optional extra "
            "(uv sync --extra spark, or pip install 'socialcredit[spark]') and Java 17"
        ) from e
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        log4j = _log4j_file()
        builder = (
            SparkSession.builder.master(os.environ.get("SC_SPARK_MASTER", "local[2]"))
            .appName("socialcredit-batch")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.memory", os.environ.get("SC_SPARK_DRIVER_MEMORY", "1g"))
            .config(
                "spark.sql.shuffle.partitions",
                os.environ.get("SC_SPARK_SHUFFLE_PARTITIONS", "8"),
            )
            .config(
                "spark.driver.extraJavaOptions",
                f"-Dlog4j2.configurationFile=file:{log4j} -Dlog4j.configurationFile=file:{log4j}",
            )
        )
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        if _started is None:
            atexit.register(stop)
        _started = spark
        return spark


def stop() -> None:
    """Stop the session :func:`session` started, and end its JVM (a session that was already
    active when :func:`session` was called is left alone)."""
    global _started, _log4j
    with _lock:
        spark, _started = _started, None
        if spark is None:
            return
        from pyspark import SparkContext

        spark.stop()
        gateway = SparkContext._gateway
        if gateway is not None:
            proc = getattr(gateway, "proc", None)
            with contextlib.suppress(Exception):
                gateway.shutdown()
            if proc is not None:
                # the JVM exits when its stdin closes (PythonGatewayServer watches it)
                with contextlib.suppress(Exception):
                    proc.stdin.close()
                try:
                    proc.wait(timeout=30)
                except Exception:
                    proc.kill()
                    proc.wait()
            SparkContext._gateway = None
            SparkContext._jvm = None
        if _log4j is not None:
            _log4j.unlink(missing_ok=True)
            _log4j = None


# --------------------------------------------------------------------------- stages


class SparkStages:
    """Stage, fetch and drop for :class:`socialcredit.engine.batch._Stages` on Spark."""

    def __init__(self, con: Any):
        self.spark = con._session
        self.frames: dict[str, Any] = {}

    def stage(self, name: str, sql: str) -> None:
        df = self.spark.sql(sql).localCheckpoint(eager=True)
        df.createOrReplaceTempView(name)
        self.frames[name] = df

    def empty(self, name: str, schema: Any) -> None:
        from ibis.backends.pyspark.datatypes import PySparkSchema

        df = self.spark.createDataFrame([], PySparkSchema.from_ibis(schema))
        df.createOrReplaceTempView(name)
        self.frames[name] = df

    def fetch(self, sql: str) -> pa.Table:
        return self.spark.sql(sql).toArrow()

    def drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        df = self.frames.pop(name, None)
        if df is not None:
            df.unpersist()
