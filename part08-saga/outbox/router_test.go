package outbox

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func header(m kafka.Message, k string) string {
	for _, h := range m.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

var router = Router{Known: map[string]bool{"order": true, "payment": true}}

// Routed like Debezium's EventRouter: topic events.<aggregate_type>, key
// aggregate_id, value the payload, the event id in a header.
func TestRouteLikeEventRouter(t *testing.T) {
	m, err := router.Route(Event{ID: "e1", AggregateType: "order", AggregateID: "o-1", EventType: "ORDER_CREATED", Payload: json.RawMessage(`{"order_id":"o-1"}`)})
	require.NoError(t, err)
	assert.Equal(t, "events.order", m.Topic)
	assert.Equal(t, "o-1", string(m.Key))
	assert.JSONEq(t, `{"order_id":"o-1"}`, string(m.Value))
	assert.Equal(t, "e1", header(m, HeaderID))
	assert.Equal(t, "ORDER_CREATED", header(m, HeaderEventType))
	d, err := Decode(m)
	require.NoError(t, err)
	assert.Equal(t, Delivered{ID: "e1", EventType: "ORDER_CREATED", AggregateType: "order", AggregateID: "o-1", Payload: m.Value}, d)
}

// What cannot be routed goes to the dead-letter topic with the reason, whole.
func TestDeadLetters(t *testing.T) {
	good := Event{ID: "e", AggregateType: "payment", AggregateID: "p-1", EventType: "PAID", Payload: json.RawMessage(`{}`)}
	for _, tt := range []struct {
		name   string
		change func(*Event)
		reason string
	}{
		{"unknown aggregate type", func(e *Event) { e.AggregateType = "shipment" }, `unknown aggregate type "shipment"`},
		{"type that cannot name a topic", func(e *Event) { e.AggregateType = "a/b" }, `cannot name a topic`},
		{"payload an array", func(e *Event) { e.Payload = json.RawMessage(`[1,2]`) }, "payload is not one JSON object"},
		{"payload a string", func(e *Event) { e.Payload = json.RawMessage(`"x"`) }, "payload is not one JSON object"},
		{"payload null", func(e *Event) { e.Payload = json.RawMessage(`null`) }, "payload is not one JSON object"},
		{"payload malformed", func(e *Event) { e.Payload = json.RawMessage(`{"a":`) }, "payload is not one JSON object"},
		{"two objects", func(e *Event) { e.Payload = json.RawMessage(`{} {}`) }, "payload is not one JSON object"},
		{"payload too large", func(e *Event) { e.Payload = json.RawMessage(`{"a":"` + strings.Repeat("x", 1<<20) + `"}`) }, "is over 1048576"},
		{"no key", func(e *Event) { e.AggregateID = "" }, "empty aggregate id"},
		{"no event type", func(e *Event) { e.EventType = "" }, "empty event type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := good
			tt.change(&ev)
			m, err := router.Route(ev)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.reason)
			assert.Equal(t, DefaultDeadLetterTopic, m.Topic)
			assert.Equal(t, err.Error(), header(m, HeaderReason))
			assert.Equal(t, "e", header(m, HeaderID))
			var kept struct{ ID, AggregateType, Payload string }
			require.NoError(t, json.Unmarshal(m.Value, &kept))
			assert.Equal(t, string(ev.Payload), kept.Payload, "the event is kept whole")
		})
	}
}

func TestDecodeRow(t *testing.T) {
	names := []string{"id", "seq", "aggregate_type", "aggregate_id", "event_type", "payload", "created_at", "published_at"}
	ev, err := DecodeRow(names, [][]byte{[]byte("0b6c0a56-6c0c-4a4b-9b6e-3c1f1e7b0b1a"), []byte("42"), []byte("order"), []byte("o-1"),
		[]byte("ORDER_CREATED"), []byte(`{"a": 1}`), []byte("2026-06-18 12:30:00.123456+00"), nil})
	require.NoError(t, err)
	assert.Equal(t, int64(42), ev.Seq)
	assert.Equal(t, "o-1", ev.AggregateID)
	assert.Equal(t, 123456000, ev.CreatedAt.Nanosecond())
	_, err = DecodeRow(names[:3], [][]byte{[]byte("x"), []byte("1"), []byte("order")})
	assert.ErrorContains(t, err, "outbox row without [aggregate_id event_type payload]")
	_, err = DecodeRow(names[:2], [][]byte{[]byte("x")})
	assert.ErrorContains(t, err, "2 column names for 1 values")
	_, err = DecodeRow([]string{"seq"}, [][]byte{[]byte("x")})
	assert.ErrorContains(t, err, `seq "x"`)
}

func TestDedup(t *testing.T) {
	d := Dedup{}
	assert.False(t, d.Seen("a"))
	assert.True(t, d.Seen("a"))
	assert.False(t, d.Seen("b"))
}

// FuzzDecodeRow: any column names and values decode or fail with an error,
// and a row that decodes routes or dead-letters, never panics.
func FuzzDecodeRow(f *testing.F) {
	f.Add("id,aggregate_type,aggregate_id,event_type,payload", "e|order|o-1|X|{}")
	f.Add("id,seq,created_at", "e|12|2026-06-18 12:30:00+07")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, cols, vals string) {
		names := strings.Split(cols, ",")
		var values [][]byte
		for _, v := range strings.Split(vals, "|") {
			values = append(values, []byte(v))
		}
		ev, err := DecodeRow(names, values)
		if err != nil {
			return
		}
		m, rerr := router.Route(ev)
		if rerr == nil {
			_, err := Decode(m)
			assert.NoError(t, err, "a routed message decodes")
		} else {
			assert.Equal(t, DefaultDeadLetterTopic, m.Topic)
		}
	})
}

// FuzzDecode: any message decodes or fails with an error.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("k"), []byte(`{"a":1}`), "e1")
	f.Add([]byte(""), []byte(`[]`), "")
	f.Fuzz(func(t *testing.T, key, value []byte, id string) {
		d, err := Decode(kafka.Message{Key: key, Value: value, Headers: []kafka.Header{{Key: HeaderID, Value: []byte(id)}}})
		if err == nil {
			assert.Equal(t, id, d.ID)
			assert.NotEmpty(t, d.ID)
		}
	})
}

func TestWithReplication(t *testing.T) {
	assert.Equal(t, "postgres://u@h/db?sslmode=disable&replication=database", withReplication("postgres://u@h/db?sslmode=disable"))
	assert.Equal(t, "postgresql://u@h/db?replication=database", withReplication("postgresql://u@h/db"))
	assert.Equal(t, "host=h dbname=db replication=database", withReplication("host=h dbname=db"))
}

// The table name is spliced into SQL: anything but a plain identifier is refused
// before a statement is sent.
func TestTableNameIsChecked(t *testing.T) {
	_, err := (&Poller{Table: "outbox; DROP TABLE x"}).Once(t.Context())
	assert.ErrorContains(t, err, `outbox table name "outbox; DROP TABLE x"`)
	_, err = Insert(t.Context(), nil, "Outbox", Event{})
	assert.ErrorContains(t, err, "want [a-z_][a-z0-9_]*")
	assert.NoError(t, checkTable(DefaultTable))
}
