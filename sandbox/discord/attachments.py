"""Message attachments: which files a create or edit leaves on a message, and embed links."""

from __future__ import annotations

from .cdn import AttachmentStore, StoredFile
from .errors import JSON, invalid_form
from .messages import Upload


def build_attachments(
    payload: JSON,
    uploads: list[Upload],
    *,
    existing: list[StoredFile],
    store: AttachmentStore,
    channel_id: int,
    editing: bool,
) -> list[StoredFile]:
    """The message's attachment list after this request, following Discord's rules.

    With an ``attachments`` array, existing attachments not listed are dropped and new files
    are named by their ``files[n]`` index; without it, new files are added (to the existing
    ones when editing).
    """
    by_index = {u.index: u for u in uploads}
    used: set[int] = set()
    result: list[StoredFile] = []
    listing = payload.get("attachments")
    if listing is None:
        result = list(existing) if editing else []
    else:
        if not isinstance(listing, list):
            raise invalid_form(
                "attachments", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"
            )
        current = {a.id: a for a in existing}
        for position, entry in enumerate(listing):
            if not isinstance(entry, dict) or "id" not in entry:
                raise invalid_form(
                    f"attachments.{position}.id", "BASE_TYPE_REQUIRED", "This field is required"
                )
            try:
                ref = int(entry["id"])
            except (TypeError, ValueError):
                raise invalid_form(
                    f"attachments.{position}.id", "NUMBER_TYPE_COERCE", "Value is not int."
                ) from None
            if ref in current:
                result.append(current[ref])
            elif ref in by_index:
                upload = by_index[ref]
                used.add(ref)
                result.append(
                    store.add(
                        channel_id,
                        entry.get("filename") or upload.filename,
                        upload.data,
                        upload.content_type,
                        description=entry.get("description"),
                    )
                )
            else:
                raise invalid_form(
                    f"attachments.{position}.id",
                    "ATTACHMENT_NOT_FOUND",
                    "Attachment data not found",
                )
    for upload in uploads:
        if upload.index not in used:
            result.append(store.add(channel_id, upload.filename, upload.data, upload.content_type))
    if len(result) > 10:
        raise invalid_form("attachments", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    return result


def resolve_embed_attachments(
    embeds: list[JSON], attachments: list[StoredFile], store: AttachmentStore
) -> list[JSON]:
    """Replace ``attachment://name`` image URLs with the attachment's CDN URL, as Discord does."""
    by_name = {a.filename: a for a in attachments}
    resolved: list[JSON] = []
    for embed in embeds:
        embed = dict(embed)
        for key in ("image", "thumbnail"):
            media = embed.get(key)
            if not isinstance(media, dict):
                continue
            url = media.get("url")
            if isinstance(url, str) and url.startswith("attachment://"):
                stored = by_name.get(url.removeprefix("attachment://"))
                if stored is not None:
                    media = {
                        **media,
                        "url": store.url(stored),
                        "proxy_url": store.proxy_url(stored),
                    }
                    if stored.width is not None:
                        media.update(width=stored.width, height=stored.height)
                    embed[key] = media
        resolved.append(embed)
    return resolved
