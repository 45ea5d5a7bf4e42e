"""``python -m benchmarks.soak``: the county's day (``python -m bot demo``) with the bot in
``python -m bot run`` processes, killed with SIGKILL at three seeded moments and started
again; at the end it checks the promises (PRODUCT.md §5) against what people saw."""
