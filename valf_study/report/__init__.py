"""The book: tables (:mod:`~valf_study.report.tables`) and figures
(:mod:`~valf_study.report.figures`) computed from the results tables with the library's statistics
(:mod:`valf_study.stats`), what the
pages load (:mod:`~valf_study.report.book`) and the build (:mod:`~valf_study.report.build`)."""
