"""The report of `make demo` (issue part 4) and the paper tables: tables, figures, ``report.md``.

The text-blind rows it prints are computed in :mod:`stg_lightning.eval.baselines`.

- :mod:`.figures`: training curves, heat-map overlays (paper Fig. 5) and step timelines as PNGs;
- :mod:`.markdown`: :func:`~.markdown.write_report` writes ``report.md`` (table, figures, notes);
- :mod:`.tables`: the metrics tables.

Submodules are imported directly (``from stg_lightning.report.figures import ...``) so that using one does
not load the others.
"""
