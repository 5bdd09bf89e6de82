"""Evaluation: the active-learning simulation, labelled datasets, generated data and label noise.

Benchmarks, tests and the ``simulate`` / ``bench_*`` / ``make_shapes`` commands use these modules;
production code (the rest of ``ml`` and the app) never imports them.
"""
