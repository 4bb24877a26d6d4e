"""One run: its parameters (:mod:`~valf.run.parameters`), backbone
(:mod:`~valf.run.backbones`), objective (:mod:`~valf.run.objective`), inputs
(:mod:`~valf.run.inputs`), resumable training (:mod:`~valf.run.train`,
:mod:`~valf.run.state`), evaluation (:mod:`~valf.run.evaluate`), its directory
(:mod:`~valf.run.rundir`), the environment it ran in (:mod:`~valf.run.environment`) and its
figures (:mod:`~valf.run.figures`). Only training imports a deep-learning backend."""
