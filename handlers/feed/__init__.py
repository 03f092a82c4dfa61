"""The change feed: every change_log row as an event, for pull consumers, webhook subscribers and LISTEN-ers.

events    the event JSON of a change (names fixed by the contract), type patterns, personal fields
signing   Standard Webhooks signatures (pure: no clock, no I/O)
pull      one page of events after a cursor, waiting for a commit when asked to
watch     LISTEN corpsync_changes: wakes the waiting pages and the delivery
delivery  the outbox: fan-out, per (subscriber, corp) order, backoff, disable, retention
"""

CHANNEL = "corpsync_changes"  # the NOTIFY channel (migration 0006); the payload is the last change id written
