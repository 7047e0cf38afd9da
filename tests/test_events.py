"""Match events as they go to Kafka: filter events, encoded from parts for speed, are byte for byte what the
generic encoding of the same event gives (consumers see one format, whichever path made an event)."""

from types import SimpleNamespace

import orjson

from alertlab.ingest import events
from alertlab.ingest.filters import FilterMatch


def test_filter_events_are_byte_for_byte_the_generic_encoding():
    latest = {"ZTF21aaaaaaa": SimpleNamespace(detectionId=1234567890123456789, mjd=60000.123456789012),
              "ZTF21bbbbbbb": SimpleNamespace(detectionId=2, mjd=None),
              'odd "id" é\\': SimpleNamespace(detectionId=3, mjd=59999.5)}
    owner = 'bob "the" ☃\n'
    matches = [FilterMatch(7, "alice", "ZTF21aaaaaaa"), FilterMatch(7, "alice", "ZTF21bbbbbbb"),
               FilterMatch(12, owner, "ZTF21aaaaaaa"), FilterMatch(12, owner, 'odd "id" é\\'),
               FilterMatch(7, "alice", 'odd "id" é\\')]
    now = events.now()
    got = list(events.filter_events(matches, latest, now))
    want = [events.encode(events.build("filter", m.filter_id, m.objectId, latest[m.objectId].detectionId,
                                       latest[m.objectId].mjd, now, owner=m.owner)) for m in matches]
    assert got == want
    assert orjson.loads(got[2][0]) == {"kind": "filter", "id": 12, "objectId": "ZTF21aaaaaaa",
                                       "detectionId": 1234567890123456789, "mjd": 60000.123456789012,
                                       "ingest_time": now, "owner": owner}
    assert [key for _, key in got] == [m.objectId for m in matches]  # keyed by objectId, as every event


def test_publishing_dicts_sends_their_encoding_keyed_by_object():
    sent = []
    producer = SimpleNamespace(produce=lambda topic, value, key: sent.append((topic, value, key)))
    event = events.build("area", 5, "ZTF21ccccccc", 9, 60001.25, "2026-12-02T10:00:00.000+00:00")
    events.EventPublisher(producer, "matches").publish([event])
    assert sent == [("matches", orjson.dumps(event), "ZTF21ccccccc")]
