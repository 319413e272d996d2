"""TIMPORA sharing: each agency's view of the foreigners in its jurisdiction, within its agreement."""
