package segment

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeLog lays out batches of count offsets each, every batch size bytes
// (header included), and an index with an entry every interval bytes as the
// broker adds them: when more than interval bytes were appended since the
// last entry, an entry for the batch being appended (its last offset).
func writeLog(batches, count, size, interval int) (log, index []byte) {
	since := 0
	for i := range batches {
		pos := len(log)
		base := int64(i * count)
		if since > interval {
			index = binary.BigEndian.AppendUint32(index, uint32(base+int64(count)-1))
			index = binary.BigEndian.AppendUint32(index, uint32(pos))
			since = 0
		}
		b := make([]byte, size)
		binary.BigEndian.PutUint64(b, uint64(base))
		binary.BigEndian.PutUint32(b[8:], uint32(size-12))
		b[16] = 2
		binary.BigEndian.PutUint32(b[23:], uint32(count-1))
		log = append(log, b...)
		since += size
	}
	return log, index
}

func TestLookupMatchesALinearScan(t *testing.T) {
	log, idx := writeLog(500, 7, 300, 4096)
	idx = append(idx, make([]byte, 64)...) // the preallocated tail
	entries, err := ReadIndex(idx, 0)
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	most := 0
	for target := int64(0); target < 500*7; target++ {
		want, _, ok, err := Find(log, 0, target)
		require.NoError(t, err)
		require.True(t, ok)
		got, scanned, ok, err := Find(log, Lookup(entries, target), target)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, want, got, "offset %d", target)
		most = max(most, scanned)
	}
	assert.LessOrEqual(t, most, 4096/300+2, "the scan reads at most an interval's worth of batches")
	_, _, ok, err := Find(log, 0, 500*7)
	assert.NoError(t, err)
	assert.False(t, ok, "past the end")
}

func TestReadIndexRejectsCorruption(t *testing.T) {
	_, err := ReadIndex(make([]byte, 7), 0)
	assert.ErrorIs(t, err, ErrCorrupt)
	_, idx := writeLog(100, 7, 300, 4096)
	swapped := append([]byte{}, idx[8:16]...)
	swapped = append(swapped, idx[:8]...)
	_, err = ReadIndex(swapped, 0)
	assert.ErrorContains(t, err, "does not follow")
	e, err := ReadIndex(idx, 1000)
	require.NoError(t, err)
	assert.Equal(t, int64(1000)+int64(binary.BigEndian.Uint32(idx)), e[0].Offset, "relative to the segment's base")
}

func TestNextRejectsCorruption(t *testing.T) {
	log, _ := writeLog(3, 7, 300, 4096)
	bad := append([]byte{}, log...)
	bad[16] = 1
	_, err := Batches(bad)
	assert.ErrorContains(t, err, "magic 1")
	bad = append([]byte{}, log...)
	binary.BigEndian.PutUint32(bad[8:], 0xffffffff)
	_, err = Batches(bad)
	assert.ErrorContains(t, err, "length -1")
	bs, err := Batches(log[:len(log)-1])
	assert.NoError(t, err, "a batch cut short is the end, not an error")
	assert.Len(t, bs, 2)
	_, _, err = Next(log, int64(len(log)+1))
	assert.ErrorIs(t, err, ErrCorrupt)
}

// The article's example index maps offset 1,234 to position 4,096: 1,234
// messages in 4,096 bytes is 3.3 bytes a message. An uncompressed v2 record
// is at least 7 bytes (length, attributes, timestamp delta, offset delta,
// key length, value length, header count: one byte each at their smallest)
// and a batch adds 61, so the first 1,234 offsets need at least 8,699 bytes;
// the example holds only for compressed batches.
func TestArticleIndexExampleNeedsCompression(t *testing.T) {
	const minRecord, batchOverhead = 7, 61
	assert.Greater(t, batchOverhead+1234*minRecord, 4096)
	assert.Equal(t, 8699, batchOverhead+1234*minRecord)
}

// FuzzReadIndex: any bytes give entries in increasing order or ErrCorrupt,
// and Lookup on them never returns a position not in the index.
func FuzzReadIndex(f *testing.F) {
	_, idx := writeLog(50, 3, 500, 4096)
	f.Add(idx, int64(0))
	f.Add(append(idx, make([]byte, 16)...), int64(100))
	f.Add([]byte{0, 0, 0, 1}, int64(0))
	f.Fuzz(func(t *testing.T, b []byte, base int64) {
		entries, err := ReadIndex(b, base)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		for i := 1; i < len(entries); i++ {
			if entries[i].Offset <= entries[i-1].Offset || entries[i].Position <= entries[i-1].Position {
				t.Fatalf("entries out of order: %v", entries)
			}
		}
		if len(entries) > 0 {
			p := Lookup(entries, entries[len(entries)-1].Offset)
			if p != entries[len(entries)-1].Position {
				t.Fatalf("lookup of the last entry's offset: %d", p)
			}
		}
	})
}

// FuzzFind: any log bytes end the scan (batch, end, or ErrCorrupt), never
// a panic or a loop.
func FuzzFind(f *testing.F) {
	log, _ := writeLog(5, 3, 100, 4096)
	f.Add(log, int64(0), int64(7))
	f.Add(log[:150], int64(100), int64(14))
	f.Add([]byte{}, int64(0), int64(0))
	f.Fuzz(func(t *testing.T, log []byte, pos, target int64) {
		b, _, ok, err := Find(log, pos, target)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
		if ok && (b.LastOffset < target || b.Position+b.Size > int64(len(log))) {
			t.Fatalf("found %+v for %d in %d bytes", b, target, len(log))
		}
		_, _ = Batches(log)
	})
}
