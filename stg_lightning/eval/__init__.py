"""Evaluation: dataset loaders → common records, predictions files, torchmetrics metrics (docs/evaluation.md §5)."""
