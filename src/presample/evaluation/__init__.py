"""``presample eval``: the same metrics on the held-out test split for a
non-neural baseline (:mod:`.baseline`) and a model.

- :mod:`.metrics`: pure metric functions
- :mod:`.baseline`: the retrieval / co-occurrence sampler over the training prompts
- :mod:`.embeddings`: all-MiniLM-L6-v2 sentence embeddings, offline
- :mod:`.run`: test items, running the samplers, computing the metrics
- :mod:`.report`: ``report.md`` and the PNG plots
"""
