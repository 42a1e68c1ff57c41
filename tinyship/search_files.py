"""The files a student search writes in its ``--out`` folder, named once for the search
(which writes them) and the summary (which reads them), so neither imports the other."""

from __future__ import annotations

SEARCH_FILE = "search.json"
# teacher outputs of every run of the search, keyed by content (distill.cache)
TEACHER_CACHE = "teacher_cache"
