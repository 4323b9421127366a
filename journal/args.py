"""Arguments of the recording calls that the C fast path does not take as they are.

``Recorder.record()`` and ``record_many()`` (journal/recorder.pyx) accept plain types inline;
anything else (numpy scalars, a dict ``info``, lists, other dtypes, bad types) comes here to be
converted or refused with a JournalError naming the field, before anything is buffered.
"""
from __future__ import annotations

import getpass
import json

import numpy as np

from ..errors import JournalError
from .buffer import Many
from .columns import eid_array, typed_array
from .rows import plain, plain_eid, plain_text, utf8_ok


def info_text(v):
    """info as stored: None, a str, or compact JSON of a dict/list."""
    if v is None or isinstance(v, str):
        return plain_text(v, "info")
    if isinstance(v, (dict, list, tuple)):
        try:
            return json.dumps(v, separators=(",", ":"), default=_json_default)
        except (TypeError, ValueError) as e:
            raise JournalError(f"info is not JSON-serializable: {e}", table="events", field="info") from None
    raise JournalError(f"info must be a str, a dict or None, not {type(v).__name__}", table="events", field="info")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON-serializable")


def checked(event, kind, eid, field, old, new, info):
    """record() arguments converted to plain types (numpy scalars, dict info) or JournalError."""
    return (plain_text(event, "event", required=True), plain_text(kind, "kind"), plain_eid(eid),
            plain_text(field, "field"), plain(old, "old"), plain(new, "new"), info_text(info))


def many_item(event, kind, eids, field, olds, news):
    """record_many() arguments of any form (lists, numpy scalars, other dtypes, object arrays) as
    a buffered :class:`Many` item, None when there are no ids, or JournalError naming the field."""
    event, kind, field = plain_text(event, "event", True), plain_text(kind, "kind"), plain_text(field, "field")
    ids = eid_array(eids)
    n = len(ids)
    item = Many(event, kind, ids, field, typed_array(olds, "old", n), typed_array(news, "new", n))
    return item if n else None


def author_name(author):
    """The journal's author: the given str, else the login name (None if there is none)."""
    if author is not None:
        author = plain_text(author, "author")
    else:
        try:
            author = getpass.getuser()
        except (KeyError, OSError):
            return None
    if author is not None and not utf8_ok(author):
        author = author.encode("utf-8", "replace").decode("utf-8")
    return author
