// Package handler is an outer ring.
package handler

// Path is an HTTP route.
const Path = "/profiles/{id}"
