"""The query strategies by name, without the scoring code (and torch) behind them: what the web
process needs to offer and check a strategy. ``ml.scoring`` scores with them."""

from __future__ import annotations

#: Every strategy ``ml.scoring`` registers, in the order the pages list them.
STRATEGIES = ["least_confidence", "margin", "entropy", "bald", "variation_ratios", "random"]

#: What a new project uses: the strategy that did best from a cold start across the datasets measured
#: (digits, MNIST, the generated shapes; docs/benchmarks.md).
DEFAULT_STRATEGY = "margin"
