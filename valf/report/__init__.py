"""The book: statistics (:mod:`~valf.report.stats`), tables (:mod:`~valf.report.tables`) and
figures (:mod:`~valf.report.figures`) computed from the results tables, what the pages load
(:mod:`~valf.report.book`) and the build (:mod:`~valf.report.build`)."""
