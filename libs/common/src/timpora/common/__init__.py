"""The TIMPORA event contract and the plumbing every service shares, written once."""
