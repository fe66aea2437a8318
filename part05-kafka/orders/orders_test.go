package orders

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part05-kafka/exactlyonce"
)

func valid() Event {
	return Event{ID: "e-1", OrderID: "o-1", Seq: 1, Type: "created", Amount: 100, At: time.Unix(1700000000, 0).UTC()}
}

func TestMessageRoundTrips(t *testing.T) {
	m := valid().Message()
	assert.Equal(t, "o-1", string(m.Key), "keyed by the order: one order, one partition")
	got, err := Decode(m.Key, m.Value)
	require.NoError(t, err)
	assert.Equal(t, valid(), got)
}

func TestDecodeRejects(t *testing.T) {
	ok := valid().Message()
	edit := func(f func(map[string]any)) []byte {
		var v map[string]any
		require.NoError(t, json.Unmarshal(ok.Value, &v))
		f(v)
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return b
	}
	for _, tt := range []struct {
		name       string
		key, value []byte
		want       string
	}{
		{"not JSON", ok.Key, []byte("{oops"), "invalid character"},
		{"empty", ok.Key, nil, "EOF"},
		{"two objects", ok.Key, append(append([]byte{}, ok.Value...), ok.Value...), "data after the JSON object"},
		{"a stray brace", ok.Key, append(append([]byte{}, ok.Value...), '}'), "data after the JSON object"},
		{"trailing garbage", ok.Key, append(append([]byte{}, ok.Value...), " x"...), "data after the JSON object"},
		{"unknown field", ok.Key, edit(func(v map[string]any) { v["extra"] = 1 }), `unknown field "extra"`},
		{"no id", ok.Key, edit(func(v map[string]any) { delete(v, "id") }), "id must be 1..64 bytes"},
		{"wrong key", []byte("o-2"), ok.Value, `key "o-2" is not the order_id "o-1"`},
		{"seq 0", ok.Key, edit(func(v map[string]any) { v["seq"] = 0 }), "seq 0, want 1 or more"},
		{"negative amount", ok.Key, edit(func(v map[string]any) { v["amount"] = -5 }), "amount -5 is negative"},
		{"no time", ok.Key, edit(func(v map[string]any) { delete(v, "at") }), "at is missing"},
		{"type", ok.Key, edit(func(v map[string]any) { v["type"] = "refunded" }), `type "refunded"`},
		{"too big", ok.Key, []byte(`{"id":"` + strings.Repeat("x", MaxValue) + `"}`), "over 4096"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.key, tt.value)
			assert.ErrorIs(t, err, ErrMalformed)
			assert.ErrorContains(t, err, tt.want)
			m := ok
			m.Key, m.Value = tt.key, tt.value
			err = Apply(&pgx.Batch{}, m)
			assert.True(t, exactlyonce.IsPermanent(err), "a malformed message is dead-lettered at once")
		})
	}
	assert.False(t, exactlyonce.IsPermanent(errors.New("connection reset")))
}

// FuzzDecode: any key and value either decode to an event that encodes back
// to an equal event, or fail with ErrMalformed; nothing panics.
func FuzzDecode(f *testing.F) {
	m := valid().Message()
	f.Add(m.Key, m.Value)
	f.Add([]byte("o-1"), []byte(`{"id":"a","order_id":"o-1","seq":2,"type":"paid","amount":0,"at":"2024-01-01T00:00:00Z"}`))
	f.Add([]byte(""), []byte(`{}`))
	f.Add([]byte("k"), []byte(`null`))
	f.Add([]byte("k"), []byte(`{"id":"a","id":"b"}`))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		e, err := Decode(key, value)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		m := e.Message()
		again, err := Decode(m.Key, m.Value)
		if err != nil || !again.At.Equal(e.At) || again.ID != e.ID || again.Seq != e.Seq || again.OrderID != e.OrderID {
			t.Fatalf("round trip: %+v -> %+v, %v", e, again, err)
		}
	})
}
