#!/usr/bin/env python3
"""Soak a drop folder: a watcher (run.py --watch --delete-input) driven by a few hundred random
events — quick drops, slow copies, copies stalled past the settle time, copies held open,
rewrites, files dropped again (new or the same content), deletions by the photographer, videos
whole and cut short, kill -9 and a restart — with the invariant checked after every event:

    no input is ever deleted without a whole output made from its last content

(checked from the files, see tests/dropfolder.py). At the end every stalled copy is finished,
the watcher is left to settle, and every input must be processed (deleted, with its output) or
kept with a reason in the summary. Prints the counts; exits 1 on any violation.

    python scripts/soak_drop_folder.py --events 300 --seed 1
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.dropfolder import Content, Inbox, Watching, photo, video

EVENTS = {  # kind: weight
    "drop": 20,
    "slow copy": 12,
    "stalled copy": 8,
    "held open": 4,
    "finish a stalled copy": 8,
    "rewrite": 8,
    "drop again (new content)": 6,
    "drop again (same content)": 3,
    "photographer deletes": 4,
    "video": 5,
    "video cut short": 4,
    "kill -9 and restart": 4,
}


class Soak:
    def __init__(self, folder: Path, seed: int, settle: float) -> None:
        self.rng = random.Random(seed)
        self.inbox = Inbox(folder / "in", folder / "out")
        self.inbox.folder.mkdir(parents=True)
        self.summary = folder / "summary.json"
        self.watch = Watching(
            self.inbox.folder,
            self.inbox.output,
            "--summary",
            str(self.summary),
            settle=settle,
            log=folder / "watcher.log",
        )
        self.stalled: dict[str, Content] = {}
        self.counts: Counter[str] = Counter()
        self.serial = 0

    def name(self, ext: str = "jpg") -> str:
        self.serial += 1
        return f"f{self.serial:04d}.{ext}"

    def present(self) -> list[str]:
        return sorted(p.name for p in self.inbox.folder.iterdir() if p.name not in self.stalled)

    def gone(self) -> list[str]:
        return sorted(n for n in self.inbox.history if not (self.inbox.folder / n).exists())

    def event(self, kind: str) -> str:
        rng, inbox = self.rng, self.inbox
        if kind == "drop":
            inbox.copy(self.name(), photo(self.serial))
        elif kind == "slow copy":
            inbox.copy(self.name(), photo(self.serial), chunks=rng.randint(2, 5), pause=0.2)
        elif kind == "stalled copy":
            name = self.name()
            self.stalled[name] = photo(self.serial)
            inbox.copy(name, self.stalled[name], stop_at=rng.uniform(0.2, 0.9))
        elif kind == "held open":
            inbox.copy(self.name(), photo(self.serial), chunks=2, pause=1.5, keep_open=True)
        elif kind == "finish a stalled copy" and self.stalled:
            name = rng.choice(sorted(self.stalled))
            del self.stalled[name]
            inbox.finish(name, chunks=2, pause=0.1)
        elif kind == "rewrite" and self.present():
            name = rng.choice(self.present())
            inbox.copy(name, video(self.serial) if name.endswith(".mp4") else photo(self.serial))
            self.serial += 1
        elif kind.startswith("drop again") and self.gone():
            name = rng.choice(self.gone())
            same = inbox.history[name][-1]
            if kind.endswith("(new content)"):
                same = video(self.serial) if same.video else photo(self.serial)
                self.serial += 1
            inbox.copy(name, same)
        elif kind == "photographer deletes" and self.present():
            inbox.remove(rng.choice(self.present()))
        elif kind == "video":
            inbox.copy(self.name("mp4"), video(self.serial, container=rng.choice(["mp4", "mkv"])))
        elif kind == "video cut short":
            name = self.name(rng.choice(["mp4", "ts"]))
            self.stalled[name] = video(self.serial, container=name.rsplit(".", 1)[1])
            size = len(self.stalled[name].data)
            inbox.copy(name, self.stalled[name], stop_at=4096 * (size // 8192) / size)
        elif kind == "kill -9 and restart":
            self.watch.kill9()
            inbox.check()
            time.sleep(self.rng.uniform(0, 1))
            self.watch.start()
        else:
            return "nothing to do"
        return kind

    def run(self, events: int) -> int:
        self.watch.start()
        self.watch.wait_ready()
        kinds, weights = zip(*EVENTS.items(), strict=True)
        started = time.monotonic()
        for number in range(events):
            done = self.event(self.rng.choices(kinds, weights)[0])
            self.counts[done] += 1
            self.inbox.check()
            time.sleep(self.rng.uniform(0, 0.3))
            if number % 25 == 0:
                print(f"{number} events, {len(self.inbox.violations)} violations", flush=True)
        for name in sorted(self.stalled):  # every copy ends
            self.inbox.finish(name)
        self.stalled.clear()
        self._settle_down()
        self.watch.stop()
        self.inbox.check()
        return self.report(time.monotonic() - started)

    def _settle_down(self, longest: float = 300.0) -> None:
        """Until the folder is empty, or nothing in it or in the watcher's log has changed for
        ten seconds (what is left is kept: the summary says why)."""
        deadline = time.monotonic() + longest
        last, since = None, time.monotonic()
        while self.present() and time.monotonic() < deadline:
            self.inbox.check()
            state = (self.present(), len(self.watch.text()))
            if state != last:
                last, since = state, time.monotonic()
            elif time.monotonic() - since > 10:
                return
            time.sleep(0.5)

    def report(self, seconds: float) -> int:
        inbox = self.inbox
        processed = [
            n for n in inbox.history if n not in inbox.removed and not (inbox.folder / n).exists()
        ]
        rows = json.loads(self.summary.read_text())["files"] if self.summary.exists() else []
        reasons = {}
        for row in rows:
            name = Path(row["input"]).name
            why = row["extra"].get("input_kept") or row.get("error")
            if why:
                reasons[name] = why
        kept = {n: reasons.get(n) for n in self.present()}
        print(f"\n{sum(self.counts.values())} events in {seconds:.0f} s:")
        for kind, count in sorted(self.counts.items()):
            print(f"  {count:4d}  {kind}")
        print(f"checks of the invariant: {inbox.events}")
        print(f"violations: {len(inbox.violations)}")
        for violation in inbox.violations:
            print(f"  {violation}")
        print(f"inputs: {len(inbox.history)}; processed and deleted: {len(processed)}")
        unexplained = [n for n, why in kept.items() if not why]
        print(f"kept with a reason: {len(kept) - len(unexplained)}")
        for name, why in sorted(kept.items()):
            print(f"  {name}: {why}")
        print(f"kept without a reason: {len(unexplained)} {unexplained}")
        made = sum(1 for n in processed if inbox.made(inbox.history[n][-1]))
        print(f"deleted inputs whose last content has a whole output: {made} of {len(processed)}")
        return 1 if inbox.violations or unexplained else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle", type=float, default=0.4)
    parser.add_argument("--folder", type=Path, help="work here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bgs-soak-") as temporary:
        folder = args.folder or Path(temporary)
        soak = Soak(folder, args.seed, args.settle)
        try:
            return soak.run(args.events)
        finally:
            if soak.watch.process is not None and soak.watch.process.poll() is None:
                soak.watch.process.kill()


if __name__ == "__main__":
    sys.exit(main())
