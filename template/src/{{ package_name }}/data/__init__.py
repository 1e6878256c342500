"""Data lifecycle: collect the raw records the model learns from."""
