"""Message rendering, pure: no I/O, no clock (the caller passes `now`).

- `classic.py`, `escape.py`: the Go plugin's texts, byte for byte, and the reason escaping they rely on.
- `rich.py` (root post, review reply, reminder) and `dm.py` (the requester's DMs): the rich style, rendered
  from a `view.RequestView` into a `view.RichPost` (message + `props.attachments`).
- `facts.py`: the facts of a request, laid out once for fields, fallback and message; `timefmt.py` its times.
- `inert.py`: untrusted text made inert (code spans and fenced blocks, invisible characters made visible).
- `limits.py`: post size safety for both styles (levels of detail, forced cuts, `fit_classic`).
"""
