package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"time"
)

// Store keeps one Record per Key. Implementations must make Claim atomic: of
// any number of concurrent Claims of one key, across processes, exactly one
// finds no live record. A record is live until its TTL runs out; an expired
// record must behave as if it were absent (the key can be used again).
//
// Every method that writes for a claim names it by its Token, so a holder
// whose claim expired and was taken by another request can never overwrite
// the newer claim or its result.
type Store interface {
	// Claim stores claim (State InProgress) under key for ttl unless a live
	// record exists. It returns nil when the caller now holds the key, or a
	// copy of the live record.
	//
	// If ctx has a deadline, the claim takes effect before it or not at all,
	// by the store's own clock: a command that reaches a stalled server and
	// runs when it wakes, after the caller gave up, must not claim the key.
	// (The middleware releases a failed Claim's token after the deadline; a
	// claim that landed later would be held by nobody.)
	Claim(ctx context.Context, key Key, claim Record, ttl time.Duration) (*Record, error)

	// Renew extends the caller's claim to ttl from now, or stores it if the
	// key has no live record (the store lost it, or it expired, whoever held
	// it). It does nothing if the caller already completed the key, and
	// returns ErrClaimLost if another token holds it. Like Claim, it takes
	// effect before ctx's deadline or not at all.
	Renew(ctx context.Context, key Key, claim Record, ttl time.Duration) error

	// Complete replaces the caller's claim (rec.Token) with rec (State
	// Completed) for ttl. Like Renew it writes when the key has no live
	// record, and it returns ErrClaimLost if another token holds the key.
	// Repeating a Complete that succeeded succeeds.
	Complete(ctx context.Context, key Key, rec Record, ttl time.Duration) error

	// Release deletes the caller's claim so the next request runs the handler.
	// It does nothing if token no longer holds an in-progress claim on key.
	Release(ctx context.Context, key Key, token string) error
}

// ErrClaimLost means another request holds the key now: this holder's claim
// expired and was taken. Renew and Complete return it; the middleware cancels
// the handler's context with it as the cause.
var ErrClaimLost = errors.New("idempotency: claim lost to another request")

// State is where a record is in its life.
type State uint8

// The states of a record. The article's schema also lists 'failed'; here a
// failure releases the key instead (Config.Releases), so no record says it.
const (
	InProgress State = iota + 1
	Completed
)

// String is the state's name in the stores: "in-progress" or "completed".
func (s State) String() string {
	switch s {
	case InProgress:
		return "in-progress"
	case Completed:
		return "completed"
	}
	return "invalid"
}

// ParseState is the inverse of State.String; it returns 0 for anything else.
func ParseState(s string) State {
	switch s {
	case "in-progress":
		return InProgress
	case "completed":
		return Completed
	}
	return 0
}

// Fingerprint identifies one request: SHA-256 over the method, the request
// target (path and query) and the body. The IETF draft's "payload"
// fingerprint plus the route, so a key reused on another endpoint is caught.
type Fingerprint [sha256.Size]byte

// NewFingerprint hashes method, target and body, separated by NUL bytes,
// which neither a method nor a request target can contain.
func NewFingerprint(method, target string, body []byte) Fingerprint {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(target))
	h.Write([]byte{0})
	h.Write(body)
	var f Fingerprint
	h.Sum(f[:0])
	return f
}

// String is the fingerprint in hex, as the stores keep it (the article's
// CHAR(64) payload_hash).
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// ParseFingerprint decodes String's output.
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	if len(s) != 2*len(f) {
		return f, errors.New("idempotency: fingerprint is not 64 hex digits")
	}
	_, err := hex.Decode(f[:], []byte(s))
	return f, err
}

// Record is what a Store keeps under a Key: an in-progress claim, or the
// response to replay.
type Record struct {
	State       State
	Fingerprint Fingerprint
	Token       string // the claim holder; unique per request

	// Set when State is Completed.
	Status      int
	Header      http.Header // minus hop-by-hop fields
	Body        []byte
	BodyOmitted bool // the body was over Config.MaxResponseBytes and is not kept
}

// Clone returns a deep copy, so a store never shares memory with its callers.
func (r Record) Clone() Record {
	r.Header = r.Header.Clone()
	r.Body = slices.Clone(r.Body)
	return r
}
