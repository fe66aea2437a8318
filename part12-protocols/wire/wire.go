// Package wire walks the Protobuf wire format by hand, without a schema: every
// field's number, wire type and value, as the article's "Protobuf Wire Format
// Encoding Internals" describes them. A key is a varint holding
// (field_number << 3) | wire_type; a varint is 7 bits a byte, least
// significant group first, the high bit set on every byte but the last (300 is
// 0xAC 0x02, the article's example); wire type 2 is a varint length and that
// many bytes (strings, bytes, sub-messages and packed repeated scalars).
//
// Walk is the reference the chapter's tests check against proto.Marshal and
// google.golang.org/protobuf/encoding/protowire (FuzzWalk); it refuses what
// protowire refuses (truncated input, a varint over 10 bytes or 64 bits, field
// number 0 or over 2^29-1, wire types 6 and 7, an unmatched group end), so a
// reader can trust its output on any bytes.
package wire

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Type is a wire type: how a field's value is laid out.
type Type uint8

// The wire types. 3 and 4 delimit a group (proto2's deprecated nested
// messages); 6 and 7 are not used.
const (
	Varint     Type = 0
	Fixed64    Type = 1
	Bytes      Type = 2
	StartGroup Type = 3
	EndGroup   Type = 4
	Fixed32    Type = 5
)

func (t Type) String() string {
	switch t {
	case Varint:
		return "VARINT"
	case Fixed64:
		return "I64"
	case Bytes:
		return "LEN"
	case StartGroup:
		return "SGROUP"
	case EndGroup:
		return "EGROUP"
	case Fixed32:
		return "I32"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// MaxFieldNumber is the largest field number Protobuf allows (2^29 - 1).
const MaxFieldNumber = 1<<29 - 1

// Field is one field as it sits on the wire.
type Field struct {
	Offset int    // where its key starts in the walked bytes
	Number int32  // field number
	Type   Type   // wire type
	Key    []byte // the key's bytes: varint of (Number << 3) | Type
	Value  uint64 // Varint, Fixed64, Fixed32: the value
	Data   []byte // Bytes: the payload; StartGroup: the group's fields, end key excluded
}

// Errors Walk returns, wrapped with the offset where they happened.
var (
	ErrTruncated   = errors.New("truncated")
	ErrOverflow    = errors.New("varint overflows 64 bits")
	ErrFieldNumber = errors.New("field number out of range 1..536870911")
	ErrWireType    = errors.New("reserved wire type")
	ErrGroup       = errors.New("group end without a matching start")
)

// ConsumeVarint decodes the varint at the start of b and returns it and its
// length in bytes: the low 7 bits of each byte, least significant first,
// until a byte without the high bit.
func ConsumeVarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if i >= len(b) {
			return 0, 0, ErrTruncated
		}
		c := b[i]
		if i == 9 && c > 1 { // the 10th byte holds bit 63 only
			return 0, 0, ErrOverflow
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, ErrOverflow
}

// AppendVarint appends v as a varint.
func AppendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// Walk calls fn for every top-level field of msg, in wire order. It stops at
// the first malformed byte with an error naming its offset, or at fn's first
// error. Groups are returned whole (Data holds their fields; walk them again).
func Walk(msg []byte, fn func(Field) error) error {
	for off := 0; off < len(msg); {
		f, n, err := consumeField(msg[off:], 0)
		if err != nil {
			return fmt.Errorf("wire: at byte %d: %w", off, err)
		}
		f.Offset = off
		if f.Type == EndGroup {
			return fmt.Errorf("wire: at byte %d: %w", off, ErrGroup)
		}
		if err := fn(f); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// consumeField reads one field; depth counts the groups it is inside.
func consumeField(b []byte, depth int) (Field, int, error) {
	key, n, err := ConsumeVarint(b)
	if err != nil {
		return Field{}, 0, err
	}
	num, typ := key>>3, Type(key&7)
	if num < 1 || num > MaxFieldNumber {
		return Field{}, 0, ErrFieldNumber
	}
	f := Field{Number: int32(num), Type: typ, Key: b[:n]}
	rest := b[n:]
	switch typ {
	case Varint:
		v, m, err := ConsumeVarint(rest)
		if err != nil {
			return Field{}, 0, err
		}
		f.Value = v
		return f, n + m, nil
	case Fixed64:
		if len(rest) < 8 {
			return Field{}, 0, ErrTruncated
		}
		for i := 7; i >= 0; i-- {
			f.Value = f.Value<<8 | uint64(rest[i])
		}
		return f, n + 8, nil
	case Fixed32:
		if len(rest) < 4 {
			return Field{}, 0, ErrTruncated
		}
		for i := 3; i >= 0; i-- {
			f.Value = f.Value<<8 | uint64(rest[i])
		}
		return f, n + 4, nil
	case Bytes:
		l, m, err := ConsumeVarint(rest)
		if err != nil {
			return Field{}, 0, err
		}
		if l > uint64(len(rest)-m) {
			return Field{}, 0, ErrTruncated
		}
		f.Data = rest[m : m+int(l)]
		return f, n + m + int(l), nil
	case StartGroup:
		if depth >= 100 {
			return Field{}, 0, errors.New("groups nested over 100 deep")
		}
		for off := 0; ; {
			if off >= len(rest) {
				return Field{}, 0, ErrTruncated
			}
			inner, m, err := consumeField(rest[off:], depth+1)
			if err != nil {
				return Field{}, 0, err
			}
			if inner.Type == EndGroup {
				if inner.Number != f.Number {
					return Field{}, 0, ErrGroup
				}
				f.Data = rest[:off]
				return f, n + off + m, nil
			}
			off += m
		}
	case EndGroup:
		return f, n, nil
	}
	return Field{}, 0, ErrWireType
}

// MaxDepth is how many levels of LEN payloads and groups Dump descends
// into; a message nested deeper is printed as its length. (proto.Unmarshal
// stops at its own recursion limit the same way: a few bytes a level make
// deep nesting cheap to send.)
const MaxDepth = 100

// Dump writes one line per field of msg: offset, key bytes, field number,
// wire type and value, descending into LEN payloads that parse as a message
// and are not printable text, and into groups, up to MaxDepth levels.
func Dump(w io.Writer, msg []byte) error {
	return dump(w, msg, 0)
}

func dump(w io.Writer, msg []byte, depth int) error {
	indent := strings.Repeat("      ", depth)
	return Walk(msg, func(f Field) error {
		key := fmt.Sprintf("% x", f.Key)
		head := fmt.Sprintf("%s%4d  %-8s field %d  %s(%d)", indent, f.Offset, key, f.Number, f.Type, uint8(f.Type))
		var err error
		switch f.Type {
		case Varint:
			_, err = fmt.Fprintf(w, "%s  %d\n", head, f.Value)
		case Fixed64, Fixed32:
			_, err = fmt.Fprintf(w, "%s  0x%x\n", head, f.Value)
		case Bytes:
			switch {
			case printable(f.Data):
				_, err = fmt.Fprintf(w, "%s  len %d  %q\n", head, len(f.Data), f.Data)
			case len(f.Data) == 0 || Walk(f.Data, func(Field) error { return nil }) != nil:
				_, err = fmt.Fprintf(w, "%s  len %d  % x\n", head, len(f.Data), f.Data)
			case depth >= MaxDepth:
				_, err = fmt.Fprintf(w, "%s  len %d  (nested deeper than %d: not walked)\n", head, len(f.Data), MaxDepth)
			default:
				if _, err = fmt.Fprintf(w, "%s  len %d  (a message:)\n", head, len(f.Data)); err == nil {
					err = dump(w, f.Data, depth+1)
				}
			}
		case StartGroup:
			if depth >= MaxDepth {
				_, err = fmt.Fprintf(w, "%s  len %d  (nested deeper than %d: not walked)\n", head, len(f.Data), MaxDepth)
			} else if _, err = fmt.Fprintf(w, "%s  (a group:)\n", head); err == nil {
				err = dump(w, f.Data, depth+1)
			}
		}
		return err
	})
}

// printable reports whether b is UTF-8 text without control characters.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	return !strings.ContainsFunc(string(b), func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// Bits writes b as the article writes varints: each byte in binary, high bit
// first ("10101100 00000010" for 300).
func Bits(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%08b", c)
	}
	return strings.Join(parts, " ")
}
