"""What a job's end says to its member: plain words, never a raw provider answer.

They are stored with the job in English and worded in the reader's language when shown
(:meth:`bot.i18n.Words.stored`), so each is a marked msgid.
"""

from __future__ import annotations

from bot.i18n import N_
from bot.runcomfy.errors import (
    ApiError,
    AuthError,
    InputRejectedError,
    NoBalanceError,
    NotFoundError,
    RateLimitedError,
    RunComfyError,
    UnknownStateError,
)

LAST_LOOK_SECONDS = 30.0
"""How long the one last status check at a job's deadline may take."""
CRASHED_BEFORE_SUBMIT = N_(
    "The bot ran into a problem before sending this job to the video service. "
    "Nothing was charged; please try again."
)
CRASHED_AGAIN = N_(
    "The bot kept running into a problem with this job, so it was given up. "
    "Your credits were released"
)
UNCONFIRMED = N_(
    "The bot ran into a problem while sending this job. It is not sent again, so you cannot "
    "be charged twice; the credits are held in case it ran, then released."
)
NO_SLOT = N_("The video service had no free slot for this job in time. Nothing was charged.")
"""Show job ``id`` as it is stored now, through its notifier (the runner's ``notify``)."""


def describe_provider_error(exc: RunComfyError) -> str:
    """Plain words for a member; raw provider bodies only ever go to the log."""
    if isinstance(exc, AuthError):
        return N_(
            "The bot's video service key was refused, so nothing was made. "
            "The operator needs to fix the key."
        )
    if isinstance(exc, NoBalanceError):
        return N_("The bot's video service account has run out of balance, so nothing was made.")
    if isinstance(exc, InputRejectedError):
        return N_("The video service rejected this request (the image, prompt or settings).")
    if isinstance(exc, RateLimitedError):
        return N_("The video service is too busy right now. Please try again in a few minutes.")
    if isinstance(exc, NotFoundError):
        return N_("The video service no longer knows this job.")
    if isinstance(exc, UnknownStateError):
        # The raw state goes to the log with the request id, never to members.
        return N_("The video service reported a state the bot does not understand.")
    if isinstance(exc, ApiError):
        return N_("The video service had a problem with this job.")
    return N_("The video service could not be reached.")
