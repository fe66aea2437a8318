// Package choreography is the article's order flow without an orchestrator:
// each service reacts to the events of the others and emits its own, and a
// failure is undone by services reacting to the failure event. It is the
// chapter's saga.OrderSaga set beside its alternative; the README compares
// them (messages per order, who knows the flow, what a failure costs).
//
//	OrderCreated      → inventory reserves  → InventoryReserved | InventoryRejected
//	InventoryReserved → payment charges     → PaymentCharged    | PaymentDeclined
//	PaymentCharged    → fulfillment         → OrderConfirmed
//	PaymentDeclined   → inventory releases  → InventoryReleased
//	InventoryRejected, InventoryReleased → orders cancel → OrderCancelled
//	OrderConfirmed    → orders confirm
//
// Every handler is idempotent on the event id (a bus delivers at least once),
// and keyed by the order id, so a Kafka topic partitioned by order id keeps an
// order's events in order.
package choreography

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Event types.
const (
	OrderCreated      = "OrderCreated"
	InventoryReserved = "InventoryReserved"
	InventoryRejected = "InventoryRejected"
	PaymentCharged    = "PaymentCharged"
	PaymentDeclined   = "PaymentDeclined"
	InventoryReleased = "InventoryReleased"
	OrderConfirmed    = "OrderConfirmed"
	OrderCancelled    = "OrderCancelled"
)

// Event is one message on the bus.
type Event struct {
	ID      string // unique: the order id and the type, since each happens once per order
	Type    string
	OrderID string
	Amount  int64 `json:",omitempty"`
	// Reject names the step that fails, for the demo and tests: "inventory" or "payment".
	Reject string `json:",omitempty"`
	At     time.Time
	By     string // the service that emitted it
}

// New returns the event of type typ for the order in e, emitted by service by.
func (e Event) next(typ, by string) Event {
	return Event{ID: e.OrderID + "/" + typ, Type: typ, OrderID: e.OrderID, Amount: e.Amount, Reject: e.Reject, At: time.Now(), By: by}
}

// Created is the first event of an order.
func Created(orderID string, amount int64, reject string) Event {
	return Event{ID: orderID + "/" + OrderCreated, Type: OrderCreated, OrderID: orderID, Amount: amount, Reject: reject, At: time.Now(), By: "orders"}
}

// Marshal and Unmarshal are the wire format.
func (e Event) Marshal() []byte { b, _ := json.Marshal(e); return b }

// Unmarshal decodes an event and checks it names its order and type.
func Unmarshal(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return e, err
	}
	if e.ID == "" || e.Type == "" || e.OrderID == "" {
		return e, fmt.Errorf("event without id, type or order: %s", b)
	}
	return e, nil
}

// Bus carries events: Publish returns once the event is durable; Run calls
// handle for every event, at least once, in order per order id.
type Bus interface {
	Publish(ctx context.Context, e Event) error
	Run(ctx context.Context, handle func(Event)) error
}

// State is what the services hold, as a test or the demo reads it.
type State struct {
	mu           sync.Mutex
	seen         map[string]map[string]bool // service → event ids handled
	Orders       map[string]string          // pending | confirmed | cancelled
	Reservations map[string]string          // reserved | released
	Payments     map[string]int             // charges per order
	Handled      int                        // events a service acted on
	Duplicates   int                        // deliveries a service had seen already
}

// NewState returns empty services.
func NewState() *State {
	return &State{seen: map[string]map[string]bool{}, Orders: map[string]string{}, Reservations: map[string]string{}, Payments: map[string]int{}}
}

// React is the four services: for one delivered event it returns the events
// the services emit in answer. It is idempotent on the event id per service.
func (s *State) React(e Event) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	once := func(service string) bool {
		if s.seen[service] == nil {
			s.seen[service] = map[string]bool{}
		}
		if s.seen[service][e.ID] {
			s.Duplicates++
			return false
		}
		s.seen[service][e.ID] = true
		s.Handled++
		return true
	}
	var out []Event
	switch e.Type {
	case OrderCreated:
		if once("orders") {
			s.Orders[e.OrderID] = "pending"
		}
		if once("inventory") {
			if e.Reject == "inventory" {
				out = append(out, e.next(InventoryRejected, "inventory"))
			} else {
				s.Reservations[e.OrderID] = "reserved"
				out = append(out, e.next(InventoryReserved, "inventory"))
			}
		}
	case InventoryReserved:
		if once("payments") {
			if e.Reject == "payment" {
				out = append(out, e.next(PaymentDeclined, "payments"))
			} else {
				s.Payments[e.OrderID]++
				out = append(out, e.next(PaymentCharged, "payments"))
			}
		}
	case PaymentCharged:
		if once("fulfillment") {
			out = append(out, e.next(OrderConfirmed, "fulfillment"))
		}
	case PaymentDeclined:
		if once("inventory") {
			s.Reservations[e.OrderID] = "released"
			out = append(out, e.next(InventoryReleased, "inventory"))
		}
	case InventoryRejected, InventoryReleased:
		if once("orders") {
			s.Orders[e.OrderID] = "cancelled"
			out = append(out, e.next(OrderCancelled, "orders"))
		}
	case OrderConfirmed:
		if once("orders") {
			s.Orders[e.OrderID] = "confirmed"
		}
	}
	return out
}

// Order returns an order's status, reservation and charges.
func (s *State) Order(id string) (status, reservation string, charges int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Orders[id], s.Reservations[id], s.Payments[id]
}

// Run connects the services to bus until ctx ends: every delivered event is
// passed to React and what it returns is published. trace, if set, sees every
// delivered event.
func Run(ctx context.Context, bus Bus, s *State, trace func(Event)) error {
	var pubErr error
	err := bus.Run(ctx, func(e Event) {
		if trace != nil {
			trace(e)
		}
		for _, next := range s.React(e) {
			if err := bus.Publish(ctx, next); err != nil && pubErr == nil && ctx.Err() == nil {
				pubErr = err
			}
		}
	})
	if pubErr != nil {
		return pubErr
	}
	return err
}

// Memory is an in-process Bus: one ordered queue (the stand-in for a topic).
type Memory struct {
	mu    sync.Mutex
	queue []Event
	wake  chan struct{}
}

// NewMemory returns an empty in-process bus.
func NewMemory() *Memory { return &Memory{wake: make(chan struct{}, 1)} }

// Publish implements Bus.
func (m *Memory) Publish(_ context.Context, e Event) error {
	m.mu.Lock()
	m.queue = append(m.queue, e)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run implements Bus: it delivers events in publish order until ctx ends.
func (m *Memory) Run(ctx context.Context, handle func(Event)) error {
	for {
		m.mu.Lock()
		var e Event
		ok := len(m.queue) > 0
		if ok {
			e, m.queue = m.queue[0], m.queue[1:]
		}
		m.mu.Unlock()
		if ok {
			handle(e)
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		}
	}
}
