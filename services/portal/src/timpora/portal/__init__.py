"""TIMPORA portal: the web pages officers use, in Bahasa Indonesia first, on an office PC and on a phone."""
