package idempotency

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MaxKeyLen is the longest key accepted, in bytes: Stripe's limit ("up to 255
// characters"); the IETF draft leaves the format to the server.
const MaxKeyLen = 255

// MaxTenantLen is the longest tenant (scope) accepted, in bytes.
const MaxTenantLen = 64

// ErrInvalidKey marks a malformed Idempotency-Key field; the middleware
// answers it with 400.
var ErrInvalidKey = errors.New("invalid Idempotency-Key")

// ErrInvalidTenant marks a missing or malformed tenant; the middleware
// answers it with 400.
var ErrInvalidTenant = errors.New("invalid tenant")

// Key is what a record is stored under: the client's key within its tenant.
// Two tenants may use the same ID without ever seeing each other's records.
type Key struct {
	Tenant string // [A-Za-z0-9._-]{0,64}; never contains ':'
	ID     string // the Idempotency-Key value, see ParseKey
}

// String is the key's store name, "tenant:id". The tenant cannot contain ':',
// so the first ':' always ends it and two different Keys never share a name.
func (k Key) String() string { return k.Tenant + ":" + k.ID }

// ParseKey reads one Idempotency-Key field value. The IETF draft makes it an
// RFC 8941 sf-string ("8e03978e-…", with \" and \\ as the only escapes); the
// bare form most APIs document (Stripe's, the article's) is accepted too. The
// key itself must be 1 to MaxKeyLen bytes of letters, digits and -_.~:+/=
// (UUIDs, base64 and base64url strings), following the draft's advice to
// publish a fixed format and validate it before any look-up. Errors wrap
// ErrInvalidKey and say what is wrong.
func ParseKey(field string) (string, error) {
	s := strings.Trim(field, " \t")
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	key := s
	if s[0] == '"' {
		var err error
		if key, err = parseSFString(s); err != nil {
			return "", err
		}
	}
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return key, nil
}

// parseSFString decodes an RFC 8941 sf-string (section 4.2.5) that must make
// up the whole of s: no parameters, nothing after the closing quote.
func parseSFString(s string) (string, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 == len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
				return "", fmt.Errorf(`%w: a backslash in a quoted key may only escape '"' or '\'`, ErrInvalidKey)
			}
			i++
			b.WriteByte(s[i])
		case c == '"':
			if i != len(s)-1 {
				return "", fmt.Errorf("%w: unexpected %q after the closing quote", ErrInvalidKey, s[i+1:])
			}
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return "", fmt.Errorf("%w: byte 0x%02x in a quoted key", ErrInvalidKey, c)
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("%w: no closing quote", ErrInvalidKey)
}

// ValidKey reports why key is not an acceptable key ID, or nil.
func ValidKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes long; at most %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if !keyByte(key[i]) {
			return fmt.Errorf("%w: %q is not allowed; use letters, digits and -_.~:+/=", ErrInvalidKey, key[i])
		}
	}
	return nil
}

func keyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~:+/=", c) >= 0
}

// ValidTenant reports why tenant is not an acceptable scope, or nil. The empty
// tenant is valid (a single-tenant service), but HeaderScope never returns it.
func ValidTenant(tenant string) error {
	if len(tenant) > MaxTenantLen {
		return fmt.Errorf("%w: %d bytes long; at most %d", ErrInvalidTenant, len(tenant), MaxTenantLen)
	}
	for i := 0; i < len(tenant); i++ {
		if !tenantByte(tenant[i]) {
			return fmt.Errorf("%w: %q is not allowed; use letters, digits, '.', '_' or '-'", ErrInvalidTenant, tenant[i])
		}
	}
	return nil
}

func tenantByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// HeaderScope returns a Config.Scope that reads the tenant from one request
// header, which must be present once and valid. A client-supplied header is
// only as trustworthy as the client: behind authentication, derive the scope
// from the authenticated principal instead.
func HeaderScope(name string) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		vals := r.Header.Values(name)
		switch {
		case len(vals) == 0 || vals[0] == "":
			return "", fmt.Errorf("%w: the %s header is missing", ErrInvalidTenant, name)
		case len(vals) > 1:
			return "", fmt.Errorf("%w: more than one %s header", ErrInvalidTenant, name)
		}
		if err := ValidTenant(vals[0]); err != nil {
			return "", err
		}
		return vals[0], nil
	}
}
