"""A run's metrics as JSON lines (``OUT/metrics.jsonl``), one object per logged step.

Lines are appended as training goes; after a crash the last line may be cut short, and a resumed
run may repeat steps past its checkpoint. :meth:`MetricsLog.rewind` drops both, atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dalle.utils.io import atomic_write_text


class MetricsLog:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def records(self) -> list[dict]:
        """Every complete, readable line (a torn last line is ignored)."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def rewind(self, step: int) -> None:
        """Keep only the records up to ``step`` (the step a resumed run continues from)."""
        if self.path.is_file():
            kept = [r for r in self.records() if r.get("step", 0) <= step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
