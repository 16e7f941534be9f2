"""Rendering one announcement to a WAV: a chime, then the sentence, at one loudness.

The synthesiser is libespeak-ng 1.52 with its own data, as the ``espeakng-loader``
wheel installs it (pip, no download at run time). It runs in one long-lived child
process (``python -m hallctl.voice.synth --serve``, :class:`Renderer`): the library
keeps global state and is not thread-safe, its dictionaries stay out of the daemon's
memory, and a crash in C cannot take the queue down. The child is started at the
first clip and kept, because starting Python and the library costs about three times
what a clip does (≈0.1 s against ≈0.03 s of CPU); it is restarted when it dies or
overruns its time, and it exits when the daemon closes its stdin (also when the daemon
is killed). The child writes the file; the parent only waits, with a timeout.

Every clip is levelled the same way, so a hall does not hear one number louder than
the next: the speech comes out at a fixed RMS over its voiced samples, limited to a
peak; the chime (two falling tones, 叮咚) is generated at a fixed level below the
speech, so it draws attention without startling. The level is reached through
espeak-ng's own volume (:class:`Leveller`), not by scaling every sample in Python:
that scaling was ≈24 of the ≈28 ms of CPU a clip cost (issue 12, goal 5), while
espeak-ng's output level is steady from one sentence to the next (±0.4 dB at one
volume), so the volume the recent clips needed almost always fits the next one too and
a clip costs one synthesis plus one measurement.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import ctypes
import functools
import io
import json
import math
import os
import sys
import wave
from collections.abc import Callable
from pathlib import Path

from hallctl.errors import NotFound

SAMPLE_RATE = 22050  # what espeak-ng renders; the chime is generated at the same rate
SPEECH_RMS_DBFS = -18.0
CHIME_PEAK_DBFS = -9.0
PEAK_DBFS = -1.0
VOICED = 300  # |sample| above which a sample counts as speech, not the pauses between words
# A clip this close to SPEECH_RMS_DBFS (its peak at most this far over PEAK_DBFS, so never clipped)
# is kept as synthesised: ±0.4 dB is below what a listener tells apart (about 1 dB).
LEVEL_TOLERANCE_DB = 0.4
START_VOLUME = 77  # espeak-ng's volume (0-200, default 100) that gives about SPEECH_RMS_DBFS for Mandarin
MAX_VOLUME = 200
RENDER_TIMEOUT_S = 20.0

# espeak-ng's API constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE = 1
_VOLUME = 2
_PHONEMES_IPA = 0x02
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class VoiceFailed(NotFound):
    """The voice could not be rendered (library missing or synthesis failed): 404 ``voice_failed``."""


# ---- the library (child process, or a test that asks for phonemes) ------------------------


@functools.cache
def _library() -> ctypes.CDLL:
    """The library, initialised once per process (the renderer child, or a test asking for phonemes)."""
    try:
        import espeakng_loader  # the wheel carries libespeak-ng 1.52 and its data
    except ImportError as exc:
        raise VoiceFailed("voice_unavailable", "the espeakng-loader package is not installed") from exc
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    rate = lib.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), _INIT_DONT_EXIT
    )
    if rate != SAMPLE_RATE:
        raise VoiceFailed("voice_failed", f"espeak-ng initialised at {rate} Hz, expected {SAMPLE_RATE}")
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    if lib.espeak_SetVoiceByName(b"cmn") != 0:
        raise VoiceFailed("voice_failed", "espeak-ng has no Mandarin (cmn) voice")
    return lib


def phonemes(text: str) -> str:
    """The IPA phonemes espeak-ng will say for ``text`` (language switches shown as ``(en)``)."""
    lib = _library()
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    buf = ctypes.c_char_p(text.encode())
    ptr = ctypes.pointer(buf)
    out: list[str] = []
    for _ in range(len(text) + 1):  # one clause per call; never more clauses than characters
        if not buf.value:
            break
        clause = lib.espeak_TextToPhonemes(ptr, _CHARS_UTF8, _PHONEMES_IPA)
        if clause:
            out.append(clause.decode())
    return " ".join(out)


def speech_samples(text: str, words_per_minute: int = 150, volume: int = 100) -> array.array[int]:
    """The sentence as 16-bit mono samples at :data:`SAMPLE_RATE`, at espeak-ng's ``volume`` (0-200)."""
    lib = _library()
    samples: array.array[int] = array.array("h")

    def collect(wav: ctypes._Pointer[ctypes.c_short], n: int, _events: int | None) -> int:
        if n > 0:
            samples.frombytes(ctypes.string_at(wav, n * 2))
        return 0

    callback = _SynthCallback(collect)  # kept alive until synthesis returns
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_SetParameter(_RATE, int(words_per_minute), 0)
    lib.espeak_SetParameter(_VOLUME, max(0, min(MAX_VOLUME, int(volume))), 0)
    raw = text.encode()
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    status = lib.espeak_Synth(raw, len(raw) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    lib.espeak_Synchronize()
    if status != 0 or not samples:
        raise VoiceFailed("voice_failed", f"espeak-ng synthesis failed (status {status})")
    return samples


# ---- the clip (pure) ---------------------------------------------------------------------


def _db(dbfs: float) -> float:
    return 32767.0 * 10 ** (dbfs / 20)


@functools.cache
def chime_bytes(rate: int = SAMPLE_RATE) -> bytes:
    """The chime's samples, generated once per process."""
    return chime(rate).tobytes()


def chime(rate: int = SAMPLE_RATE) -> array.array[int]:
    """叮咚: two decaying bell tones (E5 then C5) with their octave partials, then a short pause."""
    out: array.array[int] = array.array("h")
    peak = _db(CHIME_PEAK_DBFS)
    for freq, seconds in ((659.25, 0.45), (523.25, 0.75)):
        n = int(rate * seconds)
        for i in range(n):
            t = i / rate
            env = math.exp(-4.0 * t) * min(1.0, i / (0.005 * rate))  # 5 ms attack: no click
            v = math.sin(2 * math.pi * freq * t) + 0.3 * math.sin(4 * math.pi * freq * t)
            out.append(int(peak * env * v / 1.3))
    out.extend([0] * int(rate * 0.25))
    return out


def measure(samples: array.array[int]) -> tuple[float, int]:
    """The voiced RMS (of every 4th sample: the same level, 4 × cheaper) and the peak of ``samples``."""
    voiced = [s for s in samples[::4] if abs(s) > VOICED]
    if not voiced:
        raise VoiceFailed("voice_failed", "the synthesiser produced silence")
    rms = math.sqrt(sum(s * s for s in voiced) / len(voiced))
    return rms, max(max(samples), -min(samples))


def _gain(rms: float, peak: int) -> float:
    """The gain that brings speech measured at ``rms``/``peak`` to the target level, within the peak limit."""
    return min(_db(SPEECH_RMS_DBFS) / rms, _db(PEAK_DBFS) / max(1, peak))


def level(samples: array.array[int]) -> array.array[int]:
    """Scale speech to :data:`SPEECH_RMS_DBFS` over its voiced samples, limited to :data:`PEAK_DBFS`.

    Every sample in Python (≈24 ms for a clip): only when espeak-ng's volume cannot reach the level.
    """
    gain = _gain(*measure(samples))
    return array.array("h", (max(-32768, min(32767, round(s * gain))) for s in samples))


class Leveller:
    """Speech at one loudness, reached with espeak-ng's volume rather than per-sample scaling.

    The sentence is synthesised at the hall's current volume and measured (voiced RMS, peak).
    Within :data:`LEVEL_TOLERANCE_DB` of the target (and of the peak limit), it is used as
    it is: the usual case, one synthesis and one measurement. Otherwise the volume is
    corrected by the measured error and the sentence synthesised again, at most
    :data:`ATTEMPTS` times; if that still misses, the last synthesis is scaled sample by
    sample (:func:`level`), so every clip meets the level whatever the library does.

    The current volume follows the clips' average error (a running mean, or at once for an
    error over :data:`JUMP_DB`), not the last clip's: sentences differ by ±0.4 dB at one
    volume, and chasing each one would make the next one miss.
    """

    ATTEMPTS = 3
    JUMP_DB = 1.0
    SMOOTHING = 0.3

    def __init__(self, volume: int = START_VOLUME) -> None:
        self.volume = volume
        self.syntheses = 0  # for the bench and tests: syntheses so far (one per clip when calibrated)
        self.scaled = 0  # clips that needed per-sample scaling
        self._error_db = 0.0  # running mean of the level error at ``volume`` (positive: too quiet)

    @staticmethod
    def _corrected(volume: int, gain: float) -> int:
        # Amplitude grows a little slower than espeak-ng's volume: step as if it grew with volume**0.85.
        return max(1, min(MAX_VOLUME, round(volume * math.pow(gain, 1 / 0.85))))

    def _learn(self, gain_db: float) -> None:
        if abs(gain_db) > self.JUMP_DB:
            self._error_db = gain_db
        else:
            self._error_db += self.SMOOTHING * (gain_db - self._error_db)
        volume = self._corrected(self.volume, 10 ** (self._error_db / 20))
        if volume != self.volume:
            self.volume, self._error_db = volume, 0.0

    def speech(self, text: str, words_per_minute: int = 150) -> array.array[int]:
        volume = self.volume
        samples = speech_samples(text, words_per_minute, volume)
        self.syntheses += 1
        for attempt in range(self.ATTEMPTS):
            rms, peak = measure(samples)
            gain = _gain(rms, peak)
            gain_db = 20 * math.log10(gain)
            if attempt == 0:
                self._learn(gain_db)
            if abs(gain_db) <= LEVEL_TOLERANCE_DB:  # the level, and the peak within the tolerance of its limit
                return samples
            corrected = self._corrected(volume, gain)
            if corrected == volume or attempt == self.ATTEMPTS - 1:
                break
            volume = corrected
            samples = speech_samples(text, words_per_minute, volume)
            self.syntheses += 1
        self.scaled += 1
        return level(samples)


def wav_bytes(samples: array.array[int], rate: int = SAMPLE_RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


_LEVELLER = Leveller()  # one per process: the volume the last clip needed is where the next one starts


def clip(text: str, *, words_per_minute: int = 150, with_chime: bool = True, leveller: Leveller | None = None) -> bytes:
    """The whole WAV for ``text``: chime (optional), then the levelled sentence."""
    speech = (leveller or _LEVELLER).speech(text, words_per_minute)
    if with_chime:
        speech = array.array("h", chime_bytes(SAMPLE_RATE)) + speech
    return wav_bytes(speech)


# ---- the parent's side -------------------------------------------------------------------


def _install(tmp: Path, out: Path, then: Callable[[Path], None] | None) -> None:
    tmp.rename(out)
    if then is not None:
        then(out)


class Renderer:
    """The daemon's one renderer child: started at the first clip, restarted when it fails."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()  # one clip at a time: the child renders in order
        self.starts = 0

    async def render(
        self,
        text: str,
        out: Path,
        *,
        words_per_minute: int = 150,
        with_chime: bool = True,
        then: Callable[[Path], None] | None = None,
    ) -> None:
        """Render ``text`` into ``out`` (atomically: the child writes ``.tmp``, renamed here).

        ``then(out)`` runs in the same worker call as the rename, so a caller cancelled while
        the rename runs cannot leave a clip on disk that its bookkeeping never counted.
        """
        tmp = out.with_suffix(".tmp")
        request = {"text": text, "out": str(tmp), "rate": words_per_minute, "chime": with_chime}
        async with self._lock:
            proc = await self._started()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                async with asyncio.timeout(RENDER_TIMEOUT_S):
                    proc.stdin.write(json.dumps(request, ensure_ascii=False).encode() + b"\n")
                    await proc.stdin.drain()
                    line = await proc.stdout.readline()
            except TimeoutError:
                await self._stop(tmp)
                raise VoiceFailed("voice_failed", f"rendering took longer than {RENDER_TIMEOUT_S:g} s") from None
            except (asyncio.CancelledError, ConnectionError):  # stopping, or the child went away mid-request
                await self._stop(tmp)
                raise
            if not line:
                await self._stop(tmp)
                raise VoiceFailed("voice_failed", "the voice renderer exited")
            reply = json.loads(line)
        if not reply.get("ok"):
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
            raise VoiceFailed("voice_failed", f"voice rendering failed: {str(reply.get('error'))[:200]}")
        await asyncio.to_thread(_install, tmp, out, then)

    async def _started(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hallctl.voice.synth",
                "--serve",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            self.starts += 1
        return self._proc

    async def _stop(self, tmp: Path | None = None) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if tmp is not None:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

    async def close(self) -> None:
        """End the child (closing its stdin ends it; killed if it does not go at once)."""
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            async with asyncio.timeout(2):
                await proc.wait()
        except TimeoutError:
            pass
        await self._stop()


# How much the renderer child yields the CPU (os.nice): a clip is rendered the moment a call
# happens, exactly when the daemon, the broker and the screens move that call's messages. On a
# small box its ~10 ms burst competed with them and tripled call → MQTT p99 (bench/mqtt_latency.py,
# issue 12 goal 3); the screen fetches the clip only after the call reached it, so it can wait.
RENDERER_NICE = 10


def serve() -> int:
    """The child's loop: one JSON request per line on stdin, one JSON reply per line on stdout."""
    with contextlib.suppress(OSError):
        os.nice(RENDERER_NICE)
    for line in sys.stdin:
        try:
            req = json.loads(line)
            data = clip(str(req["text"]), words_per_minute=int(req["rate"]), with_chime=bool(req["chime"]))
            Path(req["out"]).write_bytes(data)
            reply: dict[str, object] = {"ok": True}
        except VoiceFailed as exc:
            reply = {"ok": False, "error": f"{exc.code}: {exc.message}"}
        except (ValueError, KeyError, TypeError, OSError) as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hallctl.voice.synth", description="Render one announcement.")
    ap.add_argument("--out", type=Path, help="the WAV file to write")
    ap.add_argument("--rate", type=int, default=150, help="words per minute")
    ap.add_argument("--no-chime", action="store_true")
    ap.add_argument("--phonemes", action="store_true", help="print the phonemes instead of rendering")
    ap.add_argument("--serve", action="store_true", help="render requests from stdin (the daemon's child)")
    ap.add_argument("text", nargs="?", default="")
    args = ap.parse_args(argv)
    if args.serve:
        return serve()
    try:
        if args.phonemes:
            print(phonemes(args.text))
            return 0
        if args.out is None:
            ap.error("--out is required unless --phonemes")
        args.out.write_bytes(clip(args.text, words_per_minute=args.rate, with_chime=not args.no_chime))
    except VoiceFailed as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
