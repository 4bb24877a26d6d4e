"""Many runs: study files checked and expanded (:mod:`~valf.study.spec`,
:mod:`~valf.study.plan`, :mod:`~valf.study.selection`), the sweep that executes them
(:mod:`~valf.study.sweep`, each run in its own process by :mod:`~valf.study.execute`), and
the tidy results tables (:mod:`~valf.study.results`). Importing any of them loads no
deep-learning backend."""
