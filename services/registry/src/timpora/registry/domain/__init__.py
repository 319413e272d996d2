"""The registry's rules: what a change may be, and what it makes of a foreigner's record."""
