package saga

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Store keeps the saga's state. Every method is idempotent on the order id:
// calling it again changes nothing, and a compensation that finds nothing to
// undo leaves a tombstone, so a late attempt of its step (one that started
// before the compensation and commits after it) cannot redo it. A change, and
// only a change, is journaled in the same transaction.
type Store interface {
	CreateOrder(ctx context.Context, in OrderSagaInput) error
	CancelOrder(ctx context.Context, orderID string) error
	Reserve(ctx context.Context, orderID string, items []OrderItem) (reservationID string, err error)
	Release(ctx context.Context, orderID string) error
	Charge(ctx context.Context, orderID string, amount int64, currency string) (transactionID string, err error)
	Refund(ctx context.Context, orderID string) error
	Confirm(ctx context.Context, orderID string) error
	// Journal lists what the saga of orderID changed, in order.
	Journal(ctx context.Context, orderID string) ([]Entry, error)
}

// Entry is one change a step or a compensation made.
type Entry struct {
	Step string
	Undo bool   // a compensation
	Note string // what changed, for people
	At   time.Time
}

// Statuses of the stored rows.
const (
	OrderPending   = "pending"
	OrderConfirmed = "confirmed"
	OrderCancelled = "cancelled"
	Reserved       = "reserved"
	Released       = "released"
	Charged        = "charged"
	Refunded       = "refunded"
)

// ReservationID and TransactionID derive the ids from the order id: the
// activities are keyed by it, so a retry returns the same id.
func ReservationID(orderID string) string { return "res-" + orderID }

// TransactionID is the payment's id for orderID.
func TransactionID(orderID string) string { return "tx-" + orderID }

// MemoryStore is a Store in one process: the demo's and the workflow tests'.
type MemoryStore struct {
	mu           sync.Mutex
	orders       map[string]string // status
	reservations map[string]string
	payments     map[string]string
	journal      map[string][]Entry
	now          func() time.Time
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		orders: map[string]string{}, reservations: map[string]string{}, payments: map[string]string{},
		journal: map[string][]Entry{}, now: time.Now,
	}
}

// set moves m[id] to status "to" if it is one of "from" ("" = absent) and
// journals the change; otherwise it leaves it.
func (s *MemoryStore) set(m map[string]string, id, to string, from []string, e Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(from, m[id]) {
		return
	}
	absent := m[id] == ""
	m[id] = to
	if e.Note != "" && (!absent || !e.Undo) { // an undo of nothing is a tombstone, not a change
		e.At = s.now()
		s.journal[id] = append(s.journal[id], e)
	}
}

// CreateOrder implements Store.
func (s *MemoryStore) CreateOrder(_ context.Context, in OrderSagaInput) error {
	s.set(s.orders, in.OrderID, OrderPending, []string{""}, Entry{Step: StepCreateOrder, Note: "order created (pending)"})
	return nil
}

// CancelOrder implements Store.
func (s *MemoryStore) CancelOrder(_ context.Context, id string) error {
	s.set(s.orders, id, OrderCancelled, []string{"", OrderPending, OrderConfirmed}, Entry{Step: StepCreateOrder, Undo: true, Note: "order cancelled"})
	return nil
}

// Reserve implements Store.
func (s *MemoryStore) Reserve(_ context.Context, id string, _ []OrderItem) (string, error) {
	s.set(s.reservations, id, Reserved, []string{""}, Entry{Step: StepReserveInventory, Note: "inventory reserved"})
	return ReservationID(id), nil
}

// Release implements Store.
func (s *MemoryStore) Release(_ context.Context, id string) error {
	s.set(s.reservations, id, Released, []string{"", Reserved}, Entry{Step: StepReserveInventory, Undo: true, Note: "inventory released"})
	return nil
}

// Charge implements Store.
func (s *MemoryStore) Charge(_ context.Context, id string, _ int64, _ string) (string, error) {
	s.set(s.payments, id, Charged, []string{""}, Entry{Step: StepProcessPayment, Note: "payment charged"})
	return TransactionID(id), nil
}

// Refund implements Store.
func (s *MemoryStore) Refund(_ context.Context, id string) error {
	s.set(s.payments, id, Refunded, []string{"", Charged}, Entry{Step: StepProcessPayment, Undo: true, Note: "payment refunded"})
	return nil
}

// Confirm implements Store.
func (s *MemoryStore) Confirm(_ context.Context, id string) error {
	s.set(s.orders, id, OrderConfirmed, []string{OrderPending}, Entry{Step: StepNotifyFulfillment, Note: "fulfillment notified, order confirmed"})
	return nil
}

// Journal implements Store.
func (s *MemoryStore) Journal(_ context.Context, id string) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.journal[id]), nil
}

// State returns the statuses of orderID's order, reservation and payment ("" if absent).
func (s *MemoryStore) State(id string) (order, reservation, payment string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orders[id], s.reservations[id], s.payments[id]
}
