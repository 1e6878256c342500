"""Tests of the copier-mlops template."""
