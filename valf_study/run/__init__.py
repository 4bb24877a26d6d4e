"""One run: its parameters (:mod:`~valf_study.run.parameters`), backbone
(:mod:`~valf_study.run.backbones`), objective (:mod:`~valf_study.run.objective`), inputs
(:mod:`~valf_study.run.inputs`), resumable training (:mod:`~valf_study.run.train`,
:mod:`~valf_study.run.state`), evaluation (:mod:`~valf_study.run.evaluate`), its directory
(:mod:`~valf_study.run.rundir`), the environment it ran in (:mod:`~valf_study.run.environment`) and
its
figures (:mod:`~valf_study.run.figures`). Only training imports a deep-learning backend."""
