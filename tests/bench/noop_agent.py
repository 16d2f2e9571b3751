"""A Faust app that does nothing with its messages: `python -m tests.bench.noop_agent SPEC.json` (tests/bench/scale.py).

SPEC names the broker, the topic (already filled), its partitions, how many
messages to wait for and the mode: `each` iterates the stream one event at a
time (`async for value in stream`), `take` in batches (`stream.take(500,
within=1)`, as the report agents do). The agent starts its clock at the first
message and, at the last, prints one JSON line `{"messages", "elapsed_s"}`
and exits the process (it is the parent's child, nothing to clean up).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import faust


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    app = faust.App(
        f"bench-noop-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{spec['bootstrap']}",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="baogong-noop-"),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=spec["partitions"],
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    topic = app.topic(spec["topic"], partitions=spec["partitions"], key_type=bytes, value_type=bytes)
    count: int = spec["count"]
    state: dict[str, Any] = {"n": 0, "t0": None}

    def seen(n: int) -> None:
        if state["t0"] is None:
            state["t0"] = time.perf_counter()
        state["n"] += n
        if state["n"] >= count:
            print(json.dumps({"messages": state["n"], "elapsed_s": time.perf_counter() - state["t0"]}), flush=True)
            os._exit(0)

    if spec["mode"] == "take":

        @app.agent(topic)
        async def noop_take(stream: faust.StreamT[bytes]) -> None:
            async for batch in stream.take(500, within=1):
                seen(len(batch))

    else:

        @app.agent(topic)
        async def noop_each(stream: faust.StreamT[bytes]) -> None:
            async for _ in stream:
                seen(1)

    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1])
