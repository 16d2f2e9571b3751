"""The demo: the whole pipeline on the synthetic demo city, with a simulator and a live table."""
