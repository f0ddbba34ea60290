"""stg-lightning: self-supervised spatio-temporal grounding in narrated video (Chen et al., CVPR 2024)."""

__version__ = "0.1.0"
