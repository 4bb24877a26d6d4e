"""Many runs: study files checked and expanded (:mod:`~valf_study.studies.spec`,
:mod:`~valf_study.studies.plan`, :mod:`~valf_study.studies.selection`), the sweep that executes them
(:mod:`~valf_study.studies.sweep`, each run in its own process by
:mod:`~valf_study.studies.execute`), and the tidy results tables
(:mod:`~valf_study.studies.results`). Importing any of them loads no
deep-learning backend."""
