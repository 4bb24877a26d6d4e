"""The data error shared by every reader, and how it lists offending items."""


class DataError(ValueError):
    """A data set on disk is missing, incomplete or malformed."""


def listing(items, limit=50):
    """Items one per line, indented, at most ``limit`` of them then a count of the rest."""
    items = [str(item) for item in items]
    shown = "\n  ".join(items[:limit])
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {shown}{more}"
