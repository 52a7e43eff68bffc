"""In-chat review (opt-in): Approve / Deny buttons on pending root posts, bound to the clicker's Teleport user.

`settings.py` parses `[review]`; `service.py` assembles the buttons (`buttons.py`), the click pipeline
(`pipeline.py`, with `signing.py`, `trigger.py`, `binding.py`, `guards.py`, `answers.py`) and its listener
(`routes.py`) from the ports of `ports.py`; `posts.py` and `mattermost_api.py` implement some of those ports over
the plugin-data store and two JSON calls of the Mattermost client; `check.py` is the `check` command's part.
See docs/review.md.
"""
