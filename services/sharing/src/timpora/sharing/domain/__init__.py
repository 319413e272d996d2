"""Data-sharing agreements and what they let each agency see."""
