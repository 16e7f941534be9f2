"""Rendering one announcement to a WAV: a chime, then the sentence, at one loudness.

The synthesiser is libespeak-ng 1.52 with its own data, as the ``espeakng-loader``
wheel installs it (pip, no download at run time). It runs in a child process
(``python -m hallctl.voice.synth``): the library keeps global state and is not
thread-safe, its dictionaries would sit in the daemon's memory for a few clips an
hour, and a crash in C must not take the queue down. The child writes the file; the
parent (:func:`render`) only waits, with a timeout.

Every clip is levelled the same way, so a hall does not hear one number louder than
the next: the speech is scaled to a fixed RMS over its voiced samples, then limited
to a peak; the chime (two falling tones, 叮咚) is generated at a fixed level below
the speech, so it draws attention without startling.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import ctypes
import io
import math
import sys
import wave
from pathlib import Path

from hallctl.errors import NotFound

SAMPLE_RATE = 22050  # what espeak-ng renders; the chime is generated at the same rate
SPEECH_RMS_DBFS = -18.0
CHIME_PEAK_DBFS = -9.0
PEAK_DBFS = -1.0
VOICED = 300  # |sample| above which a sample counts as speech, not the pauses between words
RENDER_TIMEOUT_S = 20.0

# espeak-ng's API constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE = 1
_PHONEMES_IPA = 0x02
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class VoiceFailed(NotFound):
    """The voice could not be rendered (library missing or synthesis failed): 404 ``voice_failed``."""


# ---- the library (child process, or a test that asks for phonemes) ------------------------


def _library() -> ctypes.CDLL:
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


def speech_samples(text: str, words_per_minute: int = 150) -> array.array[int]:
    """The sentence as 16-bit mono samples at :data:`SAMPLE_RATE`."""
    lib = _library()
    samples: array.array[int] = array.array("h")

    def collect(wav: ctypes._Pointer[ctypes.c_short], n: int, _events: int | None) -> int:
        if n > 0:
            samples.frombytes(ctypes.string_at(wav, n * 2))
        return 0

    callback = _SynthCallback(collect)  # kept alive until synthesis returns
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_SetParameter(_RATE, int(words_per_minute), 0)
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


def level(samples: array.array[int]) -> array.array[int]:
    """Scale speech to :data:`SPEECH_RMS_DBFS` over its voiced samples, limited to :data:`PEAK_DBFS`."""
    voiced = [s for s in samples if abs(s) > VOICED]
    if not voiced:
        raise VoiceFailed("voice_failed", "the synthesiser produced silence")
    rms = math.sqrt(sum(s * s for s in voiced) / len(voiced))
    gain = min(_db(SPEECH_RMS_DBFS) / rms, _db(PEAK_DBFS) / max(abs(s) for s in samples))
    return array.array("h", (max(-32768, min(32767, round(s * gain))) for s in samples))


def wav_bytes(samples: array.array[int], rate: int = SAMPLE_RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def clip(text: str, *, words_per_minute: int = 150, with_chime: bool = True) -> bytes:
    """The whole WAV for ``text``: chime (optional), then the levelled sentence."""
    speech = level(speech_samples(text, words_per_minute))
    return wav_bytes(chime() + speech if with_chime else speech)


# ---- the parent's side -------------------------------------------------------------------


async def render(text: str, out: Path, *, words_per_minute: int = 150, with_chime: bool = True) -> None:
    """Render ``text`` into ``out`` in a child process (atomically: a ``.tmp`` file renamed)."""
    tmp = out.with_suffix(".tmp")
    args = [sys.executable, "-m", "hallctl.voice.synth", "--out", str(tmp), "--rate", str(words_per_minute)]
    if not with_chime:
        args.append("--no-chime")
    proc = await asyncio.create_subprocess_exec(
        *args, "--", text, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(RENDER_TIMEOUT_S):
            _, err = await proc.communicate()
    except TimeoutError:
        await _reap(proc, tmp)
        raise VoiceFailed("voice_failed", f"rendering took longer than {RENDER_TIMEOUT_S:g} s") from None
    except asyncio.CancelledError:  # the daemon is stopping: no child outlives it
        await _reap(proc, tmp)
        raise
    if proc.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        lines = err.decode(errors="replace").strip().splitlines()
        raise VoiceFailed("voice_failed", f"voice rendering failed: {lines[-1][:200] if lines else proc.returncode}")
    tmp.rename(out)


async def _reap(proc: asyncio.subprocess.Process, tmp: Path) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()
    await asyncio.to_thread(tmp.unlink, missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hallctl.voice.synth", description="Render one announcement.")
    ap.add_argument("--out", type=Path, help="the WAV file to write")
    ap.add_argument("--rate", type=int, default=150, help="words per minute")
    ap.add_argument("--no-chime", action="store_true")
    ap.add_argument("--phonemes", action="store_true", help="print the phonemes instead of rendering")
    ap.add_argument("text")
    args = ap.parse_args(argv)
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
