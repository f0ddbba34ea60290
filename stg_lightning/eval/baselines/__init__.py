"""Reference predictors that read no text (or read the answer): each returns
:class:`~stg_lightning.eval.predictions.Predictions`, scored by the same code as a model (docs/evaluation.md §11,
docs/benchmark.md §1).

- :mod:`.oracle`: the ground truth as predictions (every metric at its ceiling);
- :mod:`.uniform_split`: MiningYouTube's text-blind row, each video cut into equal parts over its steps;
- :mod:`.chance`: chance by area (analytic) and a uniformly random pixel per second (sampled);
- :mod:`.random_object`: the centre of a random on-screen object (synthetic splits, ``objects.json``);
- :mod:`.motion_energy`: the argmax of the smoothed frame difference;
- :mod:`.pointing`: what the spatial baselines share (the seconds the pointing game scores);
- :mod:`.rows`: the text-blind rows of a dataset, scored (`stg eval`, the demo's report).

Submodules are imported directly (``from stg_lightning.eval.baselines.oracle import ...``).
"""
