"""dacode-bench: the benchmarking and reproducibility harness for all-in-one image restoration.

The pipeline, one module per stage: ``suite`` (what to run) → ``data`` (test sets, training
mixtures) → ``methods`` (rows become models) → ``provider`` (checkpoint, cached weights or
``train``) → ``evaluate`` (restored images, ``metrics``) → ``results`` (the typed document) and
``store`` (run folders, the SQLite cache) → ``reports`` (tables, pages, figures; a package of its
own). ``runner`` ties them together; ``cli`` is ``dacode-bench``. Importing it has no side effects.
"""

__version__ = "0.1.0"
