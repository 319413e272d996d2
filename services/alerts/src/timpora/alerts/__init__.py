"""TIMPORA alerts: routes registry events to the agencies that must act and tracks each alert."""
