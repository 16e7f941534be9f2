"""The voice renderer's CPU per clip (issue 12, goal 5: the renderer child is part of the hall's load).

Every call is rendered as it happens, so at a busy hall's 3 calls/s the renderer's CPU per
clip is a share of goal 5's budget. Two figures, in process CPU time:

* **through the daemon's renderer child** (``synth.Renderer``, the same long-lived
  ``python -m hallctl.voice.synth --serve``): the child's own CPU (``/proc/PID/stat``)
  across ``--clips`` announcements, after a warm-up clip (the child's start is not a clip);
* **levelling by espeak-ng's volume against per-sample scaling**, in this process,
  interleaved in ``--rounds`` rounds over the same announcements: the renderer's way
  (``synth.clip`` with a ``Leveller``) and the way before issue 12's goal 5 (synthesis at
  espeak-ng's default volume, every sample scaled in Python by ``synth.level``). The ratio
  is the figure; the machine is shared, so absolute times are noisy.

Run: .venv/bin/python bench/voice_render.py [--clips 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import figures
from hallctl.voice import spoken, synth

BENCH = "voice_render"


def announcements(n: int) -> list[str]:
    """``n`` different calls: letters, short and long numbers, both readings, windows 1-30."""
    out = []
    for i in range(n):
        letter = "ABCDEFGH"[i % 8]
        number = f"{letter}{(37 * i) % 1000:03d}"
        out.append(spoken.announcement_words(number, 1 + (7 * i) % 30, "digits" if i % 3 else "whole"))
    return out


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def child_cpu_per_clip(texts: list[str]) -> tuple[float, float]:
    """The renderer child's CPU per clip (s) and its wall time per clip (s), after a warm-up clip."""
    renderer = synth.Renderer()
    with tempfile.TemporaryDirectory(prefix="hallctl-voice-bench-") as tmp:
        try:
            await renderer.render(texts[0], Path(tmp) / "warm.wav")
            proc = renderer._proc  # the bench reads the child's CPU time
            assert proc is not None
            c0, t0 = cpu_s(proc.pid), time.monotonic()
            for n, text in enumerate(texts):
                await renderer.render(text, Path(tmp) / f"{n}.wav")
            c1, t1 = cpu_s(proc.pid), time.monotonic()
        finally:
            await renderer.close()
    return (c1 - c0) / len(texts), (t1 - t0) / len(texts)


def per_sample_clip(text: str) -> bytes:
    """The clip as rendered before goal 5's change: default volume, every sample scaled in Python."""
    speech = synth.level(synth.speech_samples(text, 150, 100))
    return synth.wav_bytes(array.array("h", synth.chime_bytes()) + speech)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    texts = announcements(args.clips)
    load = os.getloadavg()[0]
    child_cpu, child_wall = asyncio.run(child_cpu_per_clip(texts))
    leveller = synth.Leveller()
    synth.clip(texts[0], leveller=leveller)  # the library loaded, the volume settled
    s0 = leveller.syntheses
    volume_ms: list[float] = []
    sample_ms: list[float] = []
    for _ in range(args.rounds):
        t = time.process_time()
        for text in texts:
            synth.clip(text, leveller=leveller)
        volume_ms.append((time.process_time() - t) / len(texts) * 1e3)
        t = time.process_time()
        for text in texts:
            per_sample_clip(text)
        sample_ms.append((time.process_time() - t) / len(texts) * 1e3)
    syntheses = (leveller.syntheses - s0) / (len(texts) * args.rounds)
    ratios = [v / s for v, s in zip(volume_ms, sample_ms, strict=True)]
    print(f"{len(texts)} announcements, {args.rounds} rounds interleaved, process CPU (load average {load:.1f})")
    print(f"  renderer child         : {child_cpu * 1e3:6.1f} ms CPU/clip   ({child_wall * 1e3:.1f} ms wall/clip)")
    print(
        f"  levelled by volume     : {statistics.median(volume_ms):6.1f} ms CPU/clip   ({syntheses:.2f} syntheses/clip)"
    )
    print(f"  every sample scaled    : {statistics.median(sample_ms):6.1f} ms CPU/clip   (before goal 5's change)")
    print(f"  ratio                  : {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    if not args.no_record:
        figures.record(
            figures.Figure(
                BENCH,
                "renderer child CPU per clip",
                round(child_cpu * 1e3, 1),
                "ms",
                None,
                "<=",
                "5",
                f"{len(texts)} announcements through synth.Renderer's child, /proc CPU; load {load:.1f}",
            ),
            figures.Figure(
                BENCH,
                "clip CPU, levelled by volume / every sample scaled",
                round(statistics.median(ratios), 2),
                "ratio",
                None,
                "<=",
                "5",
                f"{args.rounds} rounds interleaved, median {statistics.median(volume_ms):.1f} vs"
                f" {statistics.median(sample_ms):.1f} ms; {syntheses:.2f} syntheses/clip; load {load:.1f}",
            ),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
