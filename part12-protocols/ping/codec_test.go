package ping

import (
	"google.golang.org/grpc/mem"
)

// rawBytes is a request body sent as is, whatever it holds.
type rawBytes []byte

// rawCodec sends rawBytes unencoded: a client that sends bytes which are not
// the Protobuf the server expects.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(rawBytes); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return nil, nil
}

func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func (rawCodec) Name() string                         { return "proto" }
