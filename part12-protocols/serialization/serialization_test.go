package serialization

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	txnv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/txn/v1"
)

// Every format round-trips the sample, and the sizes are what the README
// quotes: Protobuf is about a third of the JSON.
func TestFormatsRoundTrip(t *testing.T) {
	sizes := map[string]int{}
	for _, f := range Formats() {
		b, err := f.Marshal()
		require.NoError(t, err, f.Name)
		require.NoError(t, f.Unmarshal(b), f.Name)
		sizes[f.Name] = len(b)
	}
	b, err := proto.Marshal(Sample())
	require.NoError(t, err)
	var back txnv1.Transaction
	require.NoError(t, proto.Unmarshal(b, &back))
	assert.True(t, proto.Equal(Sample(), &back))
	j, err := json.Marshal(SampleJSON())
	require.NoError(t, err)
	var jb Transaction
	require.NoError(t, json.Unmarshal(j, &jb))
	assert.Equal(t, *SampleJSON(), jb)
	assert.Equal(t, 69, sizes["proto"])
	assert.Equal(t, 173, sizes["json"])
	assert.Less(t, sizes["proto"]*2, sizes["json"], "under half")
	pj, err := protojson.Marshal(Sample())
	require.NoError(t, err)
	assert.Contains(t, string(pj), `"amountMinor":"129999"`, "protojson: lowerCamelCase names, int64 as a string")
	assert.Contains(t, string(pj), `"status":"STATUS_CAPTURED"`, "enums by name")
}

// Bad input is an error from every decoder, never a panic.
func TestUnmarshalRefusesGarbage(t *testing.T) {
	for _, f := range Formats() {
		assert.Error(t, f.Unmarshal([]byte{0x0a, 0x05, 'x'}), f.Name)
	}
}

func benchFormats(b *testing.B, marshal bool) {
	for _, f := range Formats() {
		impl := f.Name
		if impl == "proto" {
			impl = "ours" // the chapter's choice for internal traffic; JSON and protojson are the anchors
		}
		payload, err := f.Marshal()
		require.NoError(b, err)
		b.Run("impl="+impl, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if marshal {
					if _, err := f.Marshal(); err != nil {
						b.Fatal(err)
					}
				} else if err := f.Unmarshal(payload); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(payload)), "payload-bytes")
		})
	}
}

// BenchmarkMarshal is the article's "Marshal Speed" column: impl=ours is
// binary Protobuf, impl=json encoding/json, impl=protojson Protobuf's JSON.
func BenchmarkMarshal(b *testing.B) { benchFormats(b, true) }

// BenchmarkUnmarshal is the "Unmarshal Speed" column.
func BenchmarkUnmarshal(b *testing.B) { benchFormats(b, false) }
