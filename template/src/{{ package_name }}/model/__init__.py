"""Model lifecycle: the baseline to beat and its evaluation."""
