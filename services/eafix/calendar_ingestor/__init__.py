"""calendar-ingestor (8086): economic-calendar intake, event identity, proximity and blackouts.

Pure domain (no I/O, the clock passed in): `entries` (what an event is), `intake` (CSV rows -> events
or a report of every rejected row), `identity` (cal8, cal5, event and signal type), `timing`
(proximity buckets, lifecycle, priority weight), `derived` (anticipation and equity-open events),
`blackout` (per-symbol trade gate) and `book` (the calendar: merge, identity, queries).
"""
