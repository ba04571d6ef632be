"""A local RunComfy Model API: the documented calls, a job clock, real videos, scripted faults.

Tests run the bot's client against it; ``seedance-bot sandbox`` lets a human try the bot
without spending anything. It speaks the API the way ``shared/reference/runcomfy-api.md``
describes it, including its error bodies.
"""

from sandbox.runcomfy.emulator import RunComfyEmulator
from sandbox.runcomfy.faults import Fault, Faults
from sandbox.runcomfy.inputs import MODEL_ID, MODEL_PATH
from sandbox.runcomfy.jobs import EmulatedJob, JobPlan, RecordedRequest

__all__ = [
    "MODEL_ID",
    "MODEL_PATH",
    "EmulatedJob",
    "Fault",
    "Faults",
    "JobPlan",
    "RecordedRequest",
    "RunComfyEmulator",
]
