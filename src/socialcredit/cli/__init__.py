"""The socialcredit command line."""
