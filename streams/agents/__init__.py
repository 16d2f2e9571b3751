"""One thin agent per stream: parse, hand to domain code and sinks, acknowledge."""
