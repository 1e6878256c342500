"""Prediction service."""
