"""Alerts: rules over circle levels, the alert lifecycle, notification delivery."""
