"""valf_study: the study of class-imbalance losses built on the :mod:`valf` library.

The study's machinery follows the way data travels, one package per stage; each stage imports
only the ones before it, and only a training run loads a deep-learning backend:

- :mod:`valf_study.data`: the data sets (one registry, :mod:`valf_study.data.sets`), their
  checks, augmentation, samplers and the input pipeline;
- :mod:`valf_study.run`: one training run, from its parameters to its run directory;
- :mod:`valf_study.studies`: many runs: study files, their plan, the sweep, the results tables;
- :mod:`valf_study.report`: the book's statistics, tables, figures and build;
- :mod:`valf_study.cli`: the ``valf`` command.

:mod:`valf_study.metrics` and :mod:`valf_study.stats` (test metrics; intervals and tests) and
:mod:`valf_study.files` (atomic writes) sit below every stage.
"""

__version__ = "0.2.0"
