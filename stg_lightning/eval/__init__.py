"""Evaluation: dataset loaders → common records, predictions files, torchmetrics metrics (DESIGN §5)."""
