"""The data error shared by every reader, and how it lists offending items."""


class DataError(ValueError):
    """A data set on disk is missing, incomplete or malformed."""


def listing(items, limit=50):
    """Items one per line, indented, at most ``limit`` of them then a count of the rest."""
    items = [str(item) for item in items]
    shown = "\n  ".join(items[:limit])
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {shown}{more}"


def file_mismatches(listed, present, listed_in):
    """Messages naming every file listed but absent, and every file present but unlisted."""
    missing = sorted(set(listed) - set(present))
    extra = sorted(set(present) - set(listed))
    messages = []
    if missing:
        messages.append(
            f"{len(missing)} images named in {listed_in} are missing:{listing(missing)}"
        )
    if extra:
        messages.append(f"{len(extra)} images are not in {listed_in}:{listing(extra)}")
    return messages
