package patterns

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Product is the cached row.
type Product struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// PriceCents is an integer: the article's float64 Price cannot hold 0.10 exactly.
	PriceCents int64 `json:"price_cents"`
	// Version is assigned by the Store: 1 on insert, +1 on every update. The cache
	// uses it to refuse writes older than what it holds.
	Version int64 `json:"version"`
}

// Limits checked before a write is accepted; the PostgreSQL schema enforces the same.
const (
	MaxIDLen   = 256  // bytes
	MaxNameLen = 1024 // bytes
)

var (
	// ErrNotFound is returned for an absent product, by the Store and by every
	// pattern (including when a cached "not found" tombstone answered).
	ErrNotFound = errors.New("patterns: product not found")

	// ErrInvalid is returned, before anything is written, for a product or ID the
	// database could not store: empty or over-long, not UTF-8, or holding a NUL byte
	// (PostgreSQL's text type cannot; it fails with SQLSTATE 22021). Write-behind
	// needs this most: it acknowledges a write long before the database sees it.
	ErrInvalid = errors.New("patterns: invalid product")

	// ErrRejected wraps an error for which the database refused a row for what it
	// holds (a constraint, a value it cannot store), as opposed to being down or
	// slow: retrying the same row cannot succeed. Stores wrap such errors with it.
	ErrRejected = errors.New("patterns: row rejected by the database")
)

// Validate reports (wrapping ErrInvalid) what would make the database refuse p for
// its shape. Rules the schema adds (here CHECK price_cents >= 0; elsewhere foreign
// keys, triggers, a constraint a later migration adds) are the database's to
// enforce: a write-behind buffer cannot know them all, so it isolates the rows the
// database rejects instead (see WriteBehind).
func (p Product) Validate() error {
	if err := ValidateID(p.ID); err != nil {
		return err
	}
	return validText("name", p.Name, MaxNameLen)
}

// ValidateID checks an ID on its own, for look-ups: a malformed ID is ErrInvalid
// instead of a database error.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty id", ErrInvalid)
	}
	return validText("id", id, MaxIDLen)
}

func validText(field, s string, maxLen int) error {
	switch {
	case len(s) > maxLen:
		return fmt.Errorf("%w: %s is %d bytes, more than %d", ErrInvalid, field, len(s), maxLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalid, field)
	}
	return nil
}

// RejectedError is a write-behind write the database refused (its error wraps
// ErrRejected). The write is dropped, not retried: it was acknowledged, so it is
// reported to WriteBehindOptions.OnReject and returned by Flush and Close.
type RejectedError struct {
	Product Product
	Err     error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("patterns: write-behind dropped product %q: %v", e.Product.ID, e.Err)
}

func (e *RejectedError) Unwrap() error { return e.Err }
