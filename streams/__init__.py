"""Streams: Faust agents that turn outlet reports into circle levels."""
