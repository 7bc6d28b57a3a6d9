"""Fine-tune and evaluate chemical language models on molecular property tasks."""

__version__ = "0.1.0"
