package outbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/segmentio/kafka-go"
)

// Header names the relays set, as Debezium's EventRouter does with
// table.field.event.id and additional placement.
const (
	HeaderID            = "id"
	HeaderEventType     = "eventType"
	HeaderAggregateType = "aggregateType"
	HeaderReason        = "deadLetterReason"
)

// DefaultDeadLetterTopic receives the events the router cannot route.
const DefaultDeadLetterTopic = "events.dead-letter"

// Router turns outbox events into Kafka messages: topic
// "events."+aggregate_type (route.topic.replacement events.${routedByValue}),
// key aggregate_id, value the JSON payload, the event id and type in headers.
type Router struct {
	// Known lists the aggregate types that have a topic; an event of any other
	// type is dead-lettered (a typo must not create a topic).
	Known map[string]bool
	// DeadLetterTopic receives what cannot be routed (DefaultDeadLetterTopic if empty).
	DeadLetterTopic string
	// MaxPayload bounds a payload's size in bytes (1 MiB, Kafka's default
	// message size, if 0).
	MaxPayload int
}

// Topic is the topic of aggregate type t.
func Topic(t string) string { return "events." + t }

var topicChars = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

// Route returns ev's message, or its dead-letter message and the reason it
// could not be routed.
func (r Router) Route(ev Event) (kafka.Message, error) {
	if err := r.check(ev); err != nil {
		return r.deadLetter(ev, err), err
	}
	return kafka.Message{
		Topic: Topic(ev.AggregateType),
		Key:   []byte(ev.AggregateID),
		Value: ev.Payload,
		Headers: []kafka.Header{
			{Key: HeaderID, Value: []byte(ev.ID)},
			{Key: HeaderEventType, Value: []byte(ev.EventType)},
			{Key: HeaderAggregateType, Value: []byte(ev.AggregateType)},
		},
	}, nil
}

func (r Router) check(ev Event) error {
	max := r.MaxPayload
	if max == 0 {
		max = 1 << 20
	}
	switch {
	case ev.invalid != nil:
		return ev.invalid
	case ev.ID == "":
		return errors.New("empty event id")
	case !topicChars.MatchString(ev.AggregateType):
		return fmt.Errorf("aggregate type %q cannot name a topic", ev.AggregateType)
	case !r.Known[ev.AggregateType]:
		return fmt.Errorf("unknown aggregate type %q", ev.AggregateType)
	case ev.AggregateID == "":
		return errors.New("empty aggregate id (the message key)")
	case ev.EventType == "":
		return errors.New("empty event type")
	case len(ev.Payload) > max:
		return fmt.Errorf("payload of %d bytes is over %d", len(ev.Payload), max)
	}
	d := json.NewDecoder(bytes.NewReader(ev.Payload))
	var obj map[string]json.RawMessage
	if err := d.Decode(&obj); err != nil || obj == nil || d.More() {
		return errors.New("payload is not one JSON object")
	}
	return nil
}

// deadLetter is ev, whole, as JSON on the dead-letter topic, with the reason.
func (r Router) deadLetter(ev Event, why error) kafka.Message {
	topic := r.DeadLetterTopic
	if topic == "" {
		topic = DefaultDeadLetterTopic
	}
	body, _ := json.Marshal(struct {
		ID, AggregateType, AggregateID, EventType string
		Payload                                   string
	}{ev.ID, ev.AggregateType, ev.AggregateID, ev.EventType, string(ev.Payload)})
	return kafka.Message{
		Topic: topic,
		Key:   []byte(ev.AggregateID),
		Value: body,
		Headers: []kafka.Header{
			{Key: HeaderID, Value: []byte(ev.ID)},
			{Key: HeaderReason, Value: []byte(why.Error())},
		},
	}
}

// Delivered is one event as a consumer reads it back.
type Delivered struct {
	ID, EventType, AggregateType, AggregateID string
	Payload                                   json.RawMessage
	Partition                                 int
	Offset                                    int64
}

// Decode reads a routed message back: the event id is required (consumers
// dedupe on it), and the value must be one JSON object.
func Decode(m kafka.Message) (Delivered, error) {
	d := Delivered{AggregateID: string(m.Key), Payload: m.Value, Partition: m.Partition, Offset: m.Offset}
	for _, h := range m.Headers {
		switch h.Key {
		case HeaderID:
			d.ID = string(h.Value)
		case HeaderEventType:
			d.EventType = string(h.Value)
		case HeaderAggregateType:
			d.AggregateType = string(h.Value)
		}
	}
	if d.ID == "" {
		return d, errors.New("message has no event id header")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(m.Value, &obj); err != nil || obj == nil {
		return d, fmt.Errorf("event %s: value is not a JSON object", d.ID)
	}
	return d, nil
}

// Dedup remembers event ids: Seen reports whether id was seen before.
type Dedup map[string]struct{}

// Seen records id and reports whether it was already there.
func (d Dedup) Seen(id string) bool {
	if _, ok := d[id]; ok {
		return true
	}
	d[id] = struct{}{}
	return false
}
