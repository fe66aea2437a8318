package ping

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	pingv2 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v2"
)

// v2Server is a server built from the v2 schema. It is registered under the
// v1 service name: the same service, redeployed with the evolved file.
type v2Server struct {
	pingv2.UnimplementedPingServiceServer
	got chan *pingv2.PingRequest
}

func (s *v2Server) Ping(_ context.Context, req *pingv2.PingRequest) (*pingv2.PingResponse, error) {
	s.got <- req
	return &pingv2.PingResponse{Message: req.GetMessage() + " from " + req.GetClientId(), TimestampMs: 1}, nil
}

// Messages: a v1 reader keeps v2's new field as unknown bytes and writes them
// back, so a v1 service in the middle of a call chain loses nothing; a v2
// reader of a v1 message sees the new field at its zero value.
func TestSchemaEvolutionMessages(t *testing.T) {
	v2 := &pingv2.PingRequest{Message: "hi", ClientId: "c-7"}
	wire, err := proto.Marshal(v2)
	require.NoError(t, err)

	var v1 pingv1.PingRequest
	require.NoError(t, proto.Unmarshal(wire, &v1))
	assert.Equal(t, "hi", v1.GetMessage())
	assert.NotEmpty(t, v1.ProtoReflect().GetUnknown(), "client_id kept as an unknown field")

	again, err := proto.Marshal(&v1)
	require.NoError(t, err)
	var back pingv2.PingRequest
	require.NoError(t, proto.Unmarshal(again, &back))
	assert.Equal(t, "c-7", back.GetClientId(), "a v1 hop passes the v2 field through")

	old, err := proto.Marshal(&pingv1.PingRequest{Message: "hi"})
	require.NoError(t, err)
	var fromOld pingv2.PingRequest
	require.NoError(t, proto.Unmarshal(old, &fromOld))
	assert.Equal(t, "hi", fromOld.GetMessage())
	assert.Empty(t, fromOld.GetClientId(), "zero value for a field the old writer did not know")
}

// Calls: a v1 client talks to a v2 server and a v2 client to a v1 server,
// over grpc-go on bufconn. The wire carries field numbers and the method path.
func TestSchemaEvolutionCalls(t *testing.T) {
	t.Run("v1 client, v2 server", func(t *testing.T) {
		lis, dial := bufListener(t)
		s := grpc.NewServer()
		desc := pingv2.PingService_ServiceDesc
		desc.ServiceName = pingv1.PingService_ServiceDesc.ServiceName // the v1 path, as a redeployed server keeps it
		srv := &v2Server{got: make(chan *pingv2.PingRequest, 1)}
		s.RegisterService(&desc, srv)
		serve(t, s, lis)
		resp, err := pingv1.NewPingServiceClient(dial(t)).Ping(t.Context(), &pingv1.PingRequest{Message: "hi"})
		require.NoError(t, err)
		assert.Equal(t, "hi from ", resp.GetMessage(), "the v2 server sees client_id empty")
		assert.Empty(t, (<-srv.got).GetClientId())
	})
	t.Run("v2 client, v1 server", func(t *testing.T) {
		lis, dial := bufListener(t)
		s := grpc.NewServer()
		pingv1.RegisterPingServiceServer(s, &GRPCServer{Svc: &Service{}})
		serve(t, s, lis)
		var resp pingv2.PingResponse
		err := dial(t).Invoke(t.Context(), pingv1.PingService_Ping_FullMethodName, &pingv2.PingRequest{Message: "hi", ClientId: "c-7"}, &resp)
		require.NoError(t, err)
		assert.Equal(t, "hi", resp.GetMessage(), "the v1 server ignored client_id and answered")
		assert.Positive(t, resp.GetTimestampMs())
	})
}

// withField returns the v2 file's descriptor with a field added to
// PingRequest.
func withField(name string, number int32) *descriptorpb.FileDescriptorProto {
	fdp := protodesc.ToFileDescriptorProto(pingv2.File_ping_v2_ping_proto)
	for _, m := range fdp.GetMessageType() {
		if m.GetName() == "PingRequest" {
			m.Field = append(m.Field, &descriptorpb.FieldDescriptorProto{
				Name:     proto.String(name),
				JsonName: proto.String(name),
				Number:   proto.Int32(number),
				Type:     descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum(),
				Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			})
		}
	}
	return fdp
}

// reserved 2 and reserved "deprecated_field_name" are enforced: a schema that
// reuses either is refused when it is built (buf and protoc refuse it the
// same way at generation time), so the rule is checked by the toolchain, not
// by code review.
func TestReservedFieldsCannotBeReused(t *testing.T) {
	_, err := protodesc.NewFile(withField("retry_count", 2), new(protoregistry.Files))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "must not use reserved number 2")

	_, err = protodesc.NewFile(withField("deprecated_field_name", 4), new(protoregistry.Files))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "must not use reserved name")

	_, err = protodesc.NewFile(withField("retry_count", 4), new(protoregistry.Files))
	assert.NoError(t, err, "a new number is fine")
}

// changed returns message msg of the v1 file with edit applied to each of
// its fields: what a careless v3 would ship.
func changed(t *testing.T, msg string, edit func(*descriptorpb.FieldDescriptorProto)) protoreflect.MessageDescriptor {
	t.Helper()
	fdp := protodesc.ToFileDescriptorProto(pingv1.File_ping_v1_ping_proto)
	for _, m := range fdp.GetMessageType() {
		if m.GetName() == msg {
			for _, f := range m.GetField() {
				edit(f)
			}
		}
	}
	fd, err := protodesc.NewFile(fdp, new(protoregistry.Files))
	require.NoError(t, err)
	return fd.Messages().ByName(protoreflect.Name(msg))
}

// retyped is PingResponse with field 2 (timestamp_ms, int64) redeclared as typ.
func retyped(t *testing.T, typ descriptorpb.FieldDescriptorProto_Type) protoreflect.MessageDescriptor {
	return changed(t, "PingResponse", func(f *descriptorpb.FieldDescriptorProto) {
		if f.GetNumber() == 2 {
			f.Type = typ.Enum()
		}
	})
}

// The article's table: "Change a field's type ❌ Wire type mismatch causes
// decode errors". In Go's protobuf it causes none: a field whose wire type
// does not match is kept as unknown bytes and the field reads as zero. And
// where the wire type matches, the old bytes are read as the new type: the
// "silent data corruption" of the article's golden rule, with no error either.
func TestArticleTypeChangeIsNoDecodeError(t *testing.T) {
	wire, err := proto.Marshal(&pingv1.PingResponse{Message: "hi", TimestampMs: 1_700_000_000_000})
	require.NoError(t, err)

	asString := dynamicpb.NewMessage(retyped(t, descriptorpb.FieldDescriptorProto_TYPE_STRING))
	require.NoError(t, proto.Unmarshal(wire, asString), "no decode error for a wire type mismatch")
	assert.Empty(t, asString.Get(asString.Descriptor().Fields().ByNumber(2)).String(), "the field reads as zero")
	assert.NotEmpty(t, asString.GetUnknown(), "the old value sits in unknown fields")

	asSint := dynamicpb.NewMessage(retyped(t, descriptorpb.FieldDescriptorProto_TYPE_SINT64))
	require.NoError(t, proto.Unmarshal(wire, asSint))
	assert.Equal(t, int64(850_000_000_000), asSint.Get(asSint.Descriptor().Fields().ByNumber(2)).Int(), "same wire type, other meaning: the timestamp read as zigzag")

	asBool := dynamicpb.NewMessage(retyped(t, descriptorpb.FieldDescriptorProto_TYPE_BOOL))
	require.NoError(t, proto.Unmarshal(wire, asBool))
	assert.True(t, asBool.Get(asBool.Descriptor().Fields().ByNumber(2)).Bool())
}

// The article's table: "Rename a field ✅ Wire format uses field number, not
// name". True of the binary format only. On JSON transports (Connect's JSON,
// curl, protojson, gRPC-gateway) the name is the key: strict protojson
// refuses the old name, and connect-go, which discards unknown JSON fields,
// silently drops the value.
func TestArticleRenameBreaksJSONClients(t *testing.T) {
	renamed := changed(t, "PingRequest", func(f *descriptorpb.FieldDescriptorProto) {
		if f.GetNumber() == 1 {
			f.Name, f.JsonName = proto.String("text"), proto.String("text")
		}
	})
	m := dynamicpb.NewMessage(renamed)
	err := protojson.Unmarshal([]byte(`{"message":"hi"}`), m)
	assert.ErrorContains(t, err, "unknown field \"message\"")

	m = dynamicpb.NewMessage(renamed)
	require.NoError(t, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal([]byte(`{"message":"hi"}`), m))
	assert.Empty(t, m.Get(renamed.Fields().ByNumber(1)).String(), "connect-go's JSON codec: the value is gone, no error")

	bin, err := proto.Marshal(&pingv1.PingRequest{Message: "hi"})
	require.NoError(t, err)
	m = dynamicpb.NewMessage(renamed)
	require.NoError(t, proto.Unmarshal(bin, m))
	assert.Equal(t, "hi", m.Get(renamed.Fields().ByNumber(1)).String(), "binary Protobuf does not care")
}

// The article's table: "Change a field number ❌ Breaking change". It breaks
// without an error: a reader that expects timestamp_ms as field 4 decodes a
// writer's field 2 fine, keeps it as unknown bytes and reads the timestamp
// as zero, so nothing fails until someone notices the zeros.
func TestRenumberedFieldIsDroppedSilently(t *testing.T) {
	wire, err := proto.Marshal(&pingv1.PingResponse{Message: "hi", TimestampMs: 1_700_000_000_000})
	require.NoError(t, err)
	renumbered := changed(t, "PingResponse", func(f *descriptorpb.FieldDescriptorProto) {
		if f.GetNumber() == 2 {
			f.Number = proto.Int32(4)
		}
	})
	m := dynamicpb.NewMessage(renumbered)
	require.NoError(t, proto.Unmarshal(wire, m), "no decode error")
	assert.Zero(t, m.Get(renumbered.Fields().ByName("timestamp_ms")).Int(), "the timestamp reads as zero")
	assert.Equal(t, "hi", m.Get(renumbered.Fields().ByName("message")).String())
	assert.NotEmpty(t, m.GetUnknown(), "the value sits in unknown fields")
}
