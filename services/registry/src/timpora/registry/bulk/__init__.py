"""Bulk import of historical records (CSV, JSON Lines) and the synthetic data generator."""
