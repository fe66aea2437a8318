// Package domain is the innermost ring of the users example: the User entity,
// its invariants and the errors every other layer speaks. It imports nothing
// from the outer rings (no SQL, no HTTP, no JSON tags), which is the point.
package domain

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Errors shared by every layer. Adapters wrap them (fmt.Errorf("…: %w", …)) so
// callers can test with errors.Is whatever the storage behind the port is.
var (
	// ErrNotFound: no user has that ID.
	ErrNotFound = errors.New("user not found")
	// ErrInvalid: the input breaks an invariant; a *ValidationError says which.
	ErrInvalid = errors.New("invalid user")
	// ErrUnavailable: the store cannot answer now (down, restarting, out of
	// connections, too slow). Nothing is wrong with the request: the same
	// request may succeed if retried later, which drivers should say (HTTP 503
	// with Retry-After) instead of reporting an internal error.
	ErrUnavailable = errors.New("user store unavailable")
)

// Limits on User fields, enforced by Validate and mirrored by the PostgreSQL
// schema's CHECK constraints. Without them a 60 KB "email" is a valid string
// that every index, log line and e-mail provider then has to carry.
const (
	MaxIDLen   = 64  // characters from [A-Za-z0-9._-]
	MaxNameLen = 200 // characters (runes)
	// MaxEmailLen is the longest address SMTP can deliver to: RFC 5321 caps
	// the path at 256 octets including the angle brackets (§4.5.3.1.3).
	MaxEmailLen = 254
	// MaxEmailLocalLen is RFC 5321's limit on the part before the '@'
	// (§4.5.3.1.1).
	MaxEmailLocalLen = 64
)

// User is the entity the article's Clean Architecture example stores.
type User struct {
	ID    string
	Name  string
	Email string
}

// ValidationError names the field that broke an invariant and why. It matches
// ErrInvalid under errors.Is.
type ValidationError struct {
	Field  string
	Reason string
}

// Error reads "invalid user: <field> <reason>", fit to show the client.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("%v: %s %s", ErrInvalid, e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true for every *ValidationError.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// ValidateID checks an ID on its own, for look-ups: 1 to MaxIDLen characters
// from [A-Za-z0-9._-], so IDs are safe in URLs, logs and file names.
func ValidateID(id string) error {
	switch {
	case id == "":
		return &ValidationError{"id", "is empty"}
	case len(id) > MaxIDLen:
		return &ValidationError{"id", fmt.Sprintf("is longer than %d characters", MaxIDLen)}
	}
	for _, r := range id {
		if !isIDRune(r) {
			return &ValidationError{"id", fmt.Sprintf("%q contains %q; use letters, digits, '.', '_' or '-'", id, r)}
		}
	}
	return nil
}

func isIDRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// Validate checks every invariant of u and returns the first broken one as a
// *ValidationError. A nil user is invalid.
func (u *User) Validate() error {
	if u == nil {
		return &ValidationError{"user", "is missing"}
	}
	if err := ValidateID(u.ID); err != nil {
		return err
	}
	switch n := utf8.RuneCountInString(u.Name); {
	case strings.TrimSpace(u.Name) == "":
		return &ValidationError{"name", "is empty"}
	case !utf8.ValidString(u.Name):
		return &ValidationError{"name", "is not valid UTF-8"}
	case strings.IndexByte(u.Name, 0) >= 0:
		// PostgreSQL text cannot store NUL: without this check the adapter
		// fails with SQLSTATE 22021 and the API answers 500.
		return &ValidationError{"name", "contains a NUL character"}
	case n > MaxNameLen:
		return &ValidationError{"name", fmt.Sprintf("is longer than %d characters", MaxNameLen)}
	}
	if len(u.Email) > MaxEmailLen {
		return &ValidationError{"email", fmt.Sprintf("is %d bytes long; RFC 5321 allows at most %d", len(u.Email), MaxEmailLen)}
	}
	if at := strings.LastIndexByte(u.Email, '@'); at > MaxEmailLocalLen {
		return &ValidationError{"email", fmt.Sprintf("has a %d-byte local part (before the @); RFC 5321 allows at most %d", at, MaxEmailLocalLen)}
	}
	addr, err := mail.ParseAddress(u.Email)
	if err != nil || addr.Name != "" || addr.Address != u.Email {
		// Reject display names ("Ada <ada@example.com>") and anything the
		// parser had to rewrite: the stored value must be the bare address.
		return &ValidationError{"email", fmt.Sprintf("%q is not a bare address like name@example.com", u.Email)}
	}
	return nil
}

// Normalize returns u with surrounding spaces trimmed and the email's domain
// lower-cased (the local part is case-sensitive by RFC 5321, so it is left
// alone). Use cases normalize before validating, so " ada@Example.COM " and
// "ada@example.com" are the same input.
func Normalize(u User) User {
	u.ID = strings.TrimSpace(u.ID)
	u.Name = strings.TrimSpace(u.Name)
	u.Email = strings.TrimSpace(u.Email)
	if at := strings.LastIndexByte(u.Email, '@'); at >= 0 {
		u.Email = u.Email[:at] + strings.ToLower(u.Email[at:])
	}
	return u
}
