#!/usr/bin/env python3
"""What compression would buy on the real-time path, measured on events shaped
like ours (a `task.updated` with every field of a task, words drawn at random
so that nothing repeats more than real text does).

Prints, for Engine.IO long-polling batches of 1, 8 and 50 events, the bytes
and what gzip (level 5, as the edge uses) makes of them; and for WebSocket,
what permessage-deflate would cost per frame: the ratio of one event
compressed on its own (no context takeover) and the CPU per frame, which is
paid per delivery (per connection), not once per event.

    python3 loadtest/compression.py
"""

import json
import random
import time
import uuid
import zlib

WORDS = (
    "parse map keep write test cache index event socket replica edge deploy "
    "import export graph status priority dependency subtask details"
).split()


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def event(rng: random.Random, project: str, seq: int) -> dict:
    return {
        "seq": seq,
        "type": "task.updated",
        "project_id": project,
        "actor": {"id": str(uuid.UUID(int=rng.getrandbits(128))), "name": "Alice Adams"},
        "at": f"2026-12-04T13:15:{seq % 60:02d}.123456Z",
        "task": {
            "id": rng.randint(1, 500),
            "title": sentence(rng, 8),
            "description": sentence(rng, 20),
            "status": rng.choice(["pending", "in-progress", "done"]),
            "priority": rng.choice(["high", "medium", "low"]),
            "dependencies": rng.sample(range(1, 500), 3),
            "subtasks": [],
            "details": sentence(rng, 15),
            "test_strategy": sentence(rng, 8),
            "assignee": None,
            "version": rng.randint(1, 9),
            "created_at": "2026-12-01T10:00:00Z",
            "updated_at": "2026-12-04T13:15:00Z",
        },
    }


def packet(value: dict) -> bytes:
    return ("42" + json.dumps(["event", value], separators=(",", ":"))).encode()


def main() -> None:
    rng = random.Random(1)
    project = str(uuid.UUID(int=rng.getrandbits(128)))
    events = [event(rng, project, 1000 + n) for n in range(50)]

    print("long-polling batch (packets joined by 0x1e), gzip -5:")
    for count in (1, 8, 50):
        raw = b"\x1e".join(packet(e) for e in events[:count])
        gzip = zlib.compressobj(5, zlib.DEFLATED, 31)
        out = gzip.compress(raw) + gzip.flush()
        print(f"  {count:>2} events: {len(raw):>6} bytes -> {len(out):>5} ({100 * len(out) / len(raw):.0f} %)")

    frame = packet(events[0])
    rounds = 20000
    started = time.perf_counter()
    for _ in range(rounds):
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        out = deflate.compress(frame) + deflate.flush(zlib.Z_SYNC_FLUSH)
    per_frame_us = (time.perf_counter() - started) / rounds * 1e6
    # zlib.h: deflate needs (1 << (windowBits + 2)) + (1 << (memLevel + 9)) bytes.
    state_kib = ((1 << 17) + (1 << 17)) / 1024
    print("WebSocket permessage-deflate, one event per frame:")
    print(f"  {len(frame)} bytes -> {len(out)} ({100 * len(out) / len(frame):.0f} %) without context takeover")
    print(f"  {per_frame_us:.0f} us per frame (paid per delivery), incl. the compressor's set-up")
    print(f"  {state_kib:.0f} KiB of zlib state per connection with context takeover")


if __name__ == "__main__":
    main()
