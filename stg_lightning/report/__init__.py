"""The report of `make demo` (issue part 4): metrics table, text-blind baselines, figures, ``report.md``.

- :mod:`.baselines`: text-blind predictions scored like the model (chance by area, random object,
  motion energy) and :func:`~.baselines.text_blind_rows` collecting every row that applies to a dataset;
- :mod:`.figures`: training curves, heat-map overlays (paper Fig. 5) and step timelines as PNGs;
- :mod:`.markdown`: :func:`~.markdown.write_report` writes ``report.md`` (table, figures, notes);
- :mod:`.tables`: the metrics tables.

Submodules are imported directly (``from stg_lightning.report.figures import ...``) so that using one does
not load the others.
"""
