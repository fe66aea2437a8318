package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	txnv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/txn/v1"
)

// The article's examples: 3 is one byte, 300 is 10101100 00000010, and the
// key of `string message = 1` is (1 << 3) | 2 = 0x0A.
func TestArticleVarintExamples(t *testing.T) {
	assert.Equal(t, "00000011", Bits(AppendVarint(nil, 3)))
	b300 := AppendVarint(nil, 300)
	assert.Equal(t, []byte{0xAC, 0x02}, b300)
	assert.Equal(t, "10101100 00000010", Bits(b300))
	assert.Equal(t, protowire.AppendVarint(nil, 300), b300, "protowire agrees")
	v, n, err := ConsumeVarint(b300)
	require.NoError(t, err)
	assert.Equal(t, uint64(300), v)
	assert.Equal(t, 2, n)

	wire, err := proto.Marshal(&pingv1.PingRequest{Message: "ping"})
	require.NoError(t, err)
	assert.Equal(t, []byte{0x0A, 0x04, 'p', 'i', 'n', 'g'}, wire, "key 0x0A = (1<<3)|2, length 4, the bytes")
}

// "Small integers write into a single byte instead of taking 4 or 8 bytes":
// for 0..127. A negative int64 (or int32) is sign-extended to 64 bits and
// takes 10 bytes, more than the 8 of a fixed64; sint64 (zigzag) keeps small
// negatives small.
func TestNegativeVarintTakesTenBytes(t *testing.T) {
	assert.Equal(t, 1+1, proto.Size(&pingv1.PingResponse{TimestampMs: 127}))
	assert.Equal(t, 1+2, proto.Size(&pingv1.PingResponse{TimestampMs: 128}))
	assert.Equal(t, 1+10, proto.Size(&pingv1.PingResponse{TimestampMs: -1}), "key + 10 bytes for -1")
	assert.Len(t, AppendVarint(nil, protowire.EncodeZigZag(-1)), 1, "zigzag: -1 is one byte")
}

// Walk reads back exactly what proto.Marshal wrote, field by field.
func TestWalkMatchesProtoMarshal(t *testing.T) {
	tx := &txnv1.Transaction{
		Id: "txn_1", AmountMinor: 129_999, Currency: "USD", CreatedAtMs: 1_781_766_000_000,
		MerchantId: "mch_4f2a", Status: txnv1.Status_STATUS_CAPTURED, Tags: []string{"card", "3ds"},
	}
	wire, err := proto.MarshalOptions{Deterministic: true}.Marshal(tx)
	require.NoError(t, err)
	var got []Field
	require.NoError(t, Walk(wire, func(f Field) error { got = append(got, f); return nil }))
	type kv struct {
		num  int32
		typ  Type
		want any
	}
	want := []kv{
		{1, Bytes, "txn_1"}, {2, Varint, uint64(129_999)}, {3, Bytes, "USD"}, {4, Varint, uint64(1_781_766_000_000)},
		{5, Bytes, "mch_4f2a"}, {6, Varint, uint64(txnv1.Status_STATUS_CAPTURED)}, {7, Bytes, "card"}, {7, Bytes, "3ds"},
	}
	require.Len(t, got, len(want))
	end := 0
	for i, w := range want {
		f := got[i]
		assert.Equal(t, w.num, f.Number, "field %d", i)
		assert.Equal(t, w.typ, f.Type, "field %d", i)
		assert.Equal(t, end, f.Offset, "fields are contiguous")
		assert.Equal(t, protowire.AppendTag(nil, protowire.Number(w.num), protowire.Type(w.typ)), f.Key)
		switch v := w.want.(type) {
		case string:
			assert.Equal(t, v, string(f.Data))
			end = f.Offset + len(f.Key) + protowire.SizeBytes(len(f.Data))
		case uint64:
			assert.Equal(t, v, f.Value)
			end = f.Offset + len(f.Key) + protowire.SizeVarint(v)
		}
	}
	assert.Equal(t, len(wire), end, "every byte accounted for")

	var out bytes.Buffer
	require.NoError(t, Dump(&out, wire))
	assert.Contains(t, out.String(), `   0  0a       field 1  LEN(2)  len 5  "txn_1"`)
	assert.Contains(t, out.String(), "   7  10       field 2  VARINT(0)  129999")
}

func TestWalkFixedAndGroups(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(1.5))
	b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 0xdeadbeef)
	b = protowire.AppendTag(b, 3, protowire.StartGroupType)
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 3, protowire.EndGroupType)
	var got []Field
	require.NoError(t, Walk(b, func(f Field) error { got = append(got, f); return nil }))
	require.Len(t, got, 3)
	assert.Equal(t, math.Float64bits(1.5), got[0].Value)
	assert.Equal(t, uint64(0xdeadbeef), got[1].Value)
	assert.Equal(t, StartGroup, got[2].Type)
	assert.Equal(t, []byte{0x20, 0x07}, got[2].Data, "the group's fields, end key excluded")
	var out bytes.Buffer
	require.NoError(t, Dump(&out, b))
	assert.Contains(t, out.String(), "(a group:)")
}

// Dump descends into a LEN payload that parses as a message, but no deeper
// than MaxDepth levels (groups and LEN payloads together), as proto.Unmarshal
// stops at its recursion limit: past it only the payload's length is printed.
// Before, bytes nested 20,000 deep (74 KB) made Dump descend 20,000 times,
// re-walking each payload on the way: time quadratic in the input and a
// stack that grows with it.
func TestDumpStopsDescendingAtMaxDepth(t *testing.T) {
	const levels = 20_000
	inner := []byte{0x08, 0x01}    // field 1, varint 1
	sizes := make([]int, levels+1) // sizes[k]: the message k levels up from inner
	sizes[0] = len(inner)
	for k := 1; k <= levels; k++ {
		sizes[k] = 1 + protowire.SizeVarint(uint64(sizes[k-1])) + sizes[k-1]
	}
	b := make([]byte, 0, sizes[levels])
	for k := levels; k >= 1; k-- { // field 1, LEN, the level below
		b = protowire.AppendVarint(protowire.AppendTag(b, 1, protowire.BytesType), uint64(sizes[k-1]))
	}
	b = append(b, inner...)
	var out strings.Builder
	require.NoError(t, Dump(&out, b))
	lines := strings.Count(out.String(), "\n")
	assert.Equal(t, MaxDepth+1, lines, "MaxDepth levels descended, the next printed as bytes")
	assert.Contains(t, out.String(), fmt.Sprintf("(nested deeper than %d: not walked)", MaxDepth))
}

// Malformed bytes get an error that names the offset and the reason.
func TestWalkRefusesMalformed(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		err  error
		at   string
	}{
		{"truncated key", []byte{0x80}, ErrTruncated, "at byte 0"},
		{"truncated varint value", []byte{0x08, 0x80}, ErrTruncated, "at byte 0"},
		{"length past the end", []byte{0x0a, 0x05, 'h'}, ErrTruncated, "at byte 0"},
		{"second field truncated", []byte{0x08, 0x01, 0x15, 0x01}, ErrTruncated, "at byte 2"},
		{"11-byte varint", append([]byte{0x08}, bytes.Repeat([]byte{0xff}, 10)...), ErrOverflow, ""},
		{"10th byte over 1", append(append([]byte{0x08}, bytes.Repeat([]byte{0xff}, 9)...), 0x02), ErrOverflow, ""},
		{"field number 0", []byte{0x02, 0x00}, ErrFieldNumber, ""},
		{"wire type 6", []byte{0x0e}, ErrWireType, ""},
		{"wire type 7", []byte{0x0f}, ErrWireType, ""},
		{"end group alone", []byte{0x0c}, ErrGroup, ""},
		{"group ends with another number", []byte{0x0b, 0x14}, ErrGroup, ""},
		{"unterminated group", []byte{0x0b, 0x08, 0x01}, ErrTruncated, ""},
		{"field number 2^29", protowire.AppendTag(nil, 1<<29, protowire.VarintType), ErrFieldNumber, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Walk(tt.in, func(Field) error { return nil })
			assert.ErrorIs(t, err, tt.err)
			assert.Contains(t, err.Error(), tt.at)
			assert.Error(t, proto.Unmarshal(tt.in, new(pingv1.PingRequest)), "proto.Unmarshal refuses it too")
		})
	}
	stop := errors.New("stop")
	assert.ErrorIs(t, Walk([]byte{0x08, 0x01, 0x08, 0x02}, func(Field) error { return stop }), stop)
}

// reference walks b with protowire's primitives, applying the same field
// number range and group depth as Walk.
func reference(b []byte, depth int) ([]Field, error) {
	var out []Field
	for off := 0; off < len(b); {
		f, n, err := refField(b[off:], depth)
		if err != nil {
			return nil, err
		}
		if f.Type == EndGroup {
			return nil, ErrGroup
		}
		f.Offset = off
		out = append(out, f)
		off += n
	}
	return out, nil
}

func refField(b []byte, depth int) (Field, int, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return Field{}, 0, protowire.ParseError(n)
	}
	if num > protowire.MaxValidNumber {
		return Field{}, 0, ErrFieldNumber
	}
	f := Field{Number: int32(num), Type: Type(typ), Key: b[:n]}
	rest := b[n:]
	var m int
	switch typ {
	case protowire.VarintType:
		f.Value, m = protowire.ConsumeVarint(rest)
	case protowire.Fixed64Type:
		f.Value, m = protowire.ConsumeFixed64(rest)
	case protowire.Fixed32Type:
		var v uint32
		v, m = protowire.ConsumeFixed32(rest)
		f.Value = uint64(v)
	case protowire.BytesType:
		f.Data, m = protowire.ConsumeBytes(rest)
	case protowire.EndGroupType:
		return f, n, nil
	case protowire.StartGroupType:
		if depth >= 100 {
			return Field{}, 0, errors.New("too deep")
		}
		for off := 0; ; {
			if off >= len(rest) {
				return Field{}, 0, ErrTruncated
			}
			inner, k, err := refField(rest[off:], depth+1)
			if err != nil {
				return Field{}, 0, err
			}
			if inner.Type == EndGroup {
				if inner.Number != f.Number {
					return Field{}, 0, ErrGroup
				}
				f.Data = rest[:off]
				return f, n + off + k, nil
			}
			off += k
		}
	default:
		return Field{}, 0, ErrWireType
	}
	if m < 0 {
		return Field{}, 0, protowire.ParseError(m)
	}
	return f, n + m, nil
}

// FuzzWalk: on any bytes Walk never panics and agrees with protowire field
// for field, or both refuse; whatever proto.Unmarshal accepts as a
// Transaction, Walk accepts.
func FuzzWalk(f *testing.F) {
	for _, m := range []proto.Message{
		&pingv1.PingRequest{Message: "ping"},
		&pingv1.PingResponse{Message: "pong", TimestampMs: -1},
		&txnv1.Transaction{Id: "txn_1", AmountMinor: 300, Currency: "EUR", Status: txnv1.Status_STATUS_REFUNDED, Tags: []string{"a", ""}},
	} {
		b, err := proto.Marshal(m)
		require.NoError(f, err)
		f.Add(b)
	}
	for _, s := range []string{"", "\x80", "\x0b\x08\x01\x0c", "\x0b\x14", "\x0e", "\x09\x01\x02\x03\x04\x05\x06\x07\x08", "\x0d\x01\x02\x03\x04"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got []Field
		err := Walk(b, func(fl Field) error { got = append(got, fl); return nil })
		want, refErr := reference(b, 0)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("Walk: %v, protowire: %v on % x", err, refErr, b)
		}
		if err == nil {
			assert.Equal(t, want, got)
			var out strings.Builder
			assert.NoError(t, Dump(&out, b))
		}
		if proto.Unmarshal(b, new(txnv1.Transaction)) == nil {
			assert.NoError(t, err, "proto.Unmarshal accepted % x", b)
		}
	})
}
