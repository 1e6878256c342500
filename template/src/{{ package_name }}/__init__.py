"""Machine-learning product: data, model and app lifecycle as code."""
