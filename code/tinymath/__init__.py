"""TinyMathReason-1B: the reproducible pipeline from raw text to a GRPO-ready math model."""

__version__ = "1.0.0"
