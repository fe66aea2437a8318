// Package segment reads a Kafka log segment as the broker keeps it on disk:
// the sparse offset index (NNN.index) and the record batches of the log
// (NNN.log), and finds a message's batch the way the broker does: a binary
// search of the index for the greatest entry at or below the target offset,
// then a scan of batch headers from that entry's file position.
//
// The index is sparse by bytes, not by messages: the broker adds an entry
// when more than index.interval.bytes (4,096 by default) of batches were
// appended since the last one, and an entry points at a batch, not a
// message (its offset is that batch's last offset, its position where the
// batch starts). The active segment's index file is preallocated
// (segment.index.bytes, 10 MiB) and zero past its last entry.
//
// Formats (big-endian), from Kafka's OffsetIndex and DefaultRecordBatch:
//
//	index entry  relative offset uint32 (offset - segment base) | position uint32
//	batch        base offset int64 | length int32 (bytes after this field) |
//	             partition leader epoch int32 | magic int8 (2) | crc uint32 |
//	             attributes int16 | last offset delta int32 | ... records
package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// EntrySize is the size of an offset index entry.
const EntrySize = 8

// batchHeader is the part of a batch header Scan reads: base offset,
// length, leader epoch, magic, crc, attributes, last offset delta.
const batchHeader = 8 + 4 + 4 + 1 + 4 + 2 + 4

// MaxBatch bounds a batch's length field; larger is corruption (the
// broker's own limit, message.max.bytes, defaults to about 1 MiB).
const MaxBatch = 64 << 20

// Entry is one index entry with its offset made absolute.
type Entry struct {
	Offset   int64 // the last offset of the batch at Position
	Position int64 // byte position of the batch in the .log file
}

// ErrCorrupt wraps every format error.
var ErrCorrupt = errors.New("segment: corrupt")

// ReadIndex parses an offset index whose segment starts at base. It stops at
// the first all-zero entry after the first (the preallocated tail of an
// active segment, as Kafka's DumpLogSegments does) and requires offsets and
// positions to increase.
func ReadIndex(b []byte, base int64) ([]Entry, error) {
	if len(b)%EntrySize != 0 {
		return nil, fmt.Errorf("%w: index is %d bytes, not a multiple of %d", ErrCorrupt, len(b), EntrySize)
	}
	var out []Entry
	for i := 0; i+EntrySize <= len(b); i += EntrySize {
		rel := binary.BigEndian.Uint32(b[i:])
		pos := binary.BigEndian.Uint32(b[i+4:])
		if rel == 0 && pos == 0 && i > 0 {
			break
		}
		e := Entry{Offset: base + int64(rel), Position: int64(pos)}
		if n := len(out); n > 0 && (e.Offset <= out[n-1].Offset || e.Position <= out[n-1].Position) {
			return nil, fmt.Errorf("%w: index entry %d (%d at %d) does not follow (%d at %d)",
				ErrCorrupt, i/EntrySize, e.Offset, e.Position, out[n-1].Offset, out[n-1].Position)
		}
		out = append(out, e)
	}
	return out, nil
}

// Lookup returns the position to start scanning from for target: that of
// the greatest entry whose offset is at most target, or 0 if there is none.
func Lookup(index []Entry, target int64) int64 {
	i := sort.Search(len(index), func(i int) bool { return index[i].Offset > target })
	if i == 0 {
		return 0
	}
	return index[i-1].Position
}

// Batch is a record batch's place in the log.
type Batch struct {
	Position   int64
	BaseOffset int64
	LastOffset int64
	Size       int64 // bytes, header included
}

// Next reads the batch header at pos in log; io.EOF-like end is ok=false
// with a nil error (fewer bytes than a header left: the segment's end, or a
// write still in progress).
func Next(log []byte, pos int64) (b Batch, ok bool, err error) {
	if pos < 0 || pos > int64(len(log)) {
		return b, false, fmt.Errorf("%w: position %d outside a %d-byte log", ErrCorrupt, pos, len(log))
	}
	h := log[pos:]
	if len(h) < batchHeader {
		return b, false, nil
	}
	length := int32(binary.BigEndian.Uint32(h[8:]))
	if magic := h[16]; magic != 2 {
		return b, false, fmt.Errorf("%w: batch at %d has magic %d, want 2", ErrCorrupt, pos, magic)
	}
	if length < batchHeader-12 || length > MaxBatch {
		return b, false, fmt.Errorf("%w: batch at %d has length %d", ErrCorrupt, pos, length)
	}
	if int64(len(h)) < 12+int64(length) {
		return b, false, nil // cut short: not written yet
	}
	base := int64(binary.BigEndian.Uint64(h))
	delta := int32(binary.BigEndian.Uint32(h[23:]))
	if delta < 0 {
		return b, false, fmt.Errorf("%w: batch at %d has last offset delta %d", ErrCorrupt, pos, delta)
	}
	return Batch{Position: pos, BaseOffset: base, LastOffset: base + int64(delta), Size: 12 + int64(length)}, true, nil
}

// Find scans batches from pos and returns the batch holding target (the
// first whose last offset is at least target) and how many batch headers it
// read. ok is false if the log ends first.
func Find(log []byte, pos, target int64) (b Batch, scanned int, ok bool, err error) {
	for {
		b, ok, err = Next(log, pos)
		if err != nil || !ok {
			return b, scanned, false, err
		}
		scanned++
		if b.LastOffset >= target {
			return b, scanned, true, nil
		}
		pos += b.Size
	}
}

// Batches lists every complete batch of log from the start.
func Batches(log []byte) ([]Batch, error) {
	var out []Batch
	for pos := int64(0); ; {
		b, ok, err := Next(log, pos)
		if err != nil || !ok {
			return out, err
		}
		if n := len(out); n > 0 && b.BaseOffset <= out[n-1].LastOffset {
			return out, fmt.Errorf("%w: batch at %d starts at offset %d, not after %d", ErrCorrupt, pos, b.BaseOffset, out[n-1].LastOffset)
		}
		out = append(out, b)
		pos += b.Size
	}
}
