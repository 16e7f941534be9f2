"""The calling screen's voice: what is said (:mod:`.spoken`) and how it is rendered (:mod:`.synth`).

Rendering runs in a child process (``python -m hallctl.voice.synth``) with the
libespeak-ng 1.52 and data bundled by the ``espeakng-loader`` wheel: Debian 12's
espeak-ng 1.51 cannot read Mandarin (docs/protocols.md §7a), and a child keeps the
library, its dictionaries and any crash out of the daemon's process.
"""
