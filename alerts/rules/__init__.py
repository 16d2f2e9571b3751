"""Alert rules: each turns a stored level into a `Verdict` (pure)."""
