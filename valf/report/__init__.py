"""The book: tables (:mod:`~valf.report.tables`) and figures (:mod:`~valf.report.figures`)
computed from the results tables with the library's statistics (:mod:`valf.stats`), what the
pages load (:mod:`~valf.report.book`) and the build (:mod:`~valf.report.build`)."""
