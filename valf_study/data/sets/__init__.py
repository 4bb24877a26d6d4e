"""The data sets of the study, one module each; :func:`valf_study.data.dataset.registry` finds
every module here that defines ``DATASET`` (modules whose name starts with ``_`` are helpers)."""
