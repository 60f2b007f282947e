"""The states of a server model and the transitions between them.

A model is ``queued`` from the moment its upload is accepted, ``preparing`` while the training child
reads the upload, ``training``, ``sampling`` (its adapter attached, writing the sample the member is
shown), then ``ready``. It ends ``failed`` (its row kept, with why, until deleted, its files gone; a ready
one fails when its adapter is found unservable on a restart or reload, and is no server's choice any
more), ``cancelled`` (stopped by /model cancel, or its upload was refused: nothing is kept) or
``deleted``. Cancel acts on every state of a job, delete on every state. An adapter is attached exactly
while its model is sampling or ready.
"""

from __future__ import annotations

QUEUED, PREPARING, TRAINING, SAMPLING, READY = "queued", "preparing", "training", "sampling", "ready"
FAILED, CANCELLED, DELETED = "failed", "cancelled", "deleted"
JOB = (QUEUED, PREPARING, TRAINING, SAMPLING)  # a training job: /model cancel stops it
ATTACHED = (SAMPLING, READY)  # its adapter is in the generator
GONE = (CANCELLED, DELETED)  # nothing is kept: no row, no file
_ENDS = {FAILED, CANCELLED, DELETED}

TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({PREPARING, *_ENDS}),
    PREPARING: frozenset({TRAINING, *_ENDS}),
    TRAINING: frozenset({SAMPLING, *_ENDS}),
    SAMPLING: frozenset({READY, *_ENDS}),
    READY: frozenset({FAILED, DELETED}),  # failed: its adapter was found unservable on a restart or reload
    FAILED: frozenset({DELETED}),
    CANCELLED: frozenset(),
    DELETED: frozenset(),
}
STATES = tuple(TRANSITIONS)


def allowed(state: str, to: str) -> bool:
    """Whether a model in ``state`` may move to ``to``."""
    return to in TRANSITIONS[state]


def ended(state: str) -> bool:
    """Whether a model in ``state`` has no job left to run (failed, cancelled or deleted)."""
    return state in _ENDS
