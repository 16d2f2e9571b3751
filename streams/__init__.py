"""Streams: the worker turning outlet reports into circle levels (supply consumers, Faust for the leader's timers)."""
