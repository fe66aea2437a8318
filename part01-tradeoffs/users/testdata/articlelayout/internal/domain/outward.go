package domain

// The innermost package importing an outer one: internal/ does not stop it.
import "example.com/layout/internal/handler"

// Route is what the domain should never know.
var Route = handler.Path
