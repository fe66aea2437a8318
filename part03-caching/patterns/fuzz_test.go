package patterns

import (
	"testing"
	"unicode/utf8"
)

// FuzzCodec: decode never panics on arbitrary cache contents (Redis is shared; a key
// may hold anything), and encode → decode returns the product unchanged.
func FuzzCodec(f *testing.F) {
	f.Add("p1", "mug", int64(900), int64(1), []byte(`1:{"id":"p1","name":"mug","price_cents":900,"version":1}`))
	f.Add("a:b", "x:y", int64(-1), int64(0), []byte("-"))
	f.Add("", "", int64(0), int64(1<<62), []byte("12:"))
	f.Add("é", "\x00", int64(1), int64(-7), []byte(`:{"id":1}`))
	f.Fuzz(func(t *testing.T, id, name string, price, version int64, raw []byte) {
		_, _ = decode(raw)
		if !utf8.ValidString(id) || !utf8.ValidString(name) {
			return // JSON replaces invalid UTF-8, so those strings cannot round-trip
		}
		p := Product{ID: id, Name: name, PriceCents: price, Version: version}
		b, err := encode(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decode(b)
		if err != nil || got != p {
			t.Fatalf("round trip of %+v: %+v, %v (encoded %q)", p, got, err, b)
		}
	})
}
