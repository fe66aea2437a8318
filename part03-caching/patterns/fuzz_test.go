package patterns

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzCodec: decode never panics on arbitrary cache contents (Redis is shared; a key
// may hold anything), and every product Validate accepts survives encode → decode
// unchanged (JSON would replace invalid UTF-8, which Validate refuses).
func FuzzCodec(f *testing.F) {
	f.Add("p1", "mug", int64(900), int64(1), []byte(`1:{"id":"p1","name":"mug","price_cents":900,"version":1}`))
	f.Add("a:b", "x:y", int64(-1), int64(0), []byte("-"))
	f.Add("", "", int64(0), int64(1<<62), []byte("12:"))
	f.Add("é", "\x00", int64(1), int64(-7), []byte(`:{"id":1}`))
	f.Add("p", "\xc3\x28", int64(0), int64(0), []byte("7:{\"name\":\"\\u0000\"}"))
	f.Add("山", "\u2028\"\\<>&", int64(-1<<63), int64(1<<63-1), []byte("9:null"))
	f.Fuzz(func(t *testing.T, id, name string, price, version int64, raw []byte) {
		_, _ = decode(raw)
		p := Product{ID: id, Name: name, PriceCents: price, Version: version}
		if p.Validate() != nil {
			return
		}
		b, err := encode(p)
		require.NoError(t, err)
		got, err := decode(b)
		require.NoError(t, err, "encoded %q", b)
		require.Equal(t, p, got, "encoded %q", b)
	})
}
