// Package middleware has the import block of the article's Redis
// middleware: context is imported, and nothing in the file uses it.
package middleware

import (
	"context"
	"net/http"
	"time"
)

// Wrap is here so that net/http and time are used.
func Wrap(next http.Handler) http.Handler {
	time.Sleep(0)
	return next
}
