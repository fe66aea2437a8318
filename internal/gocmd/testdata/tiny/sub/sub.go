// Package sub is a nested package of a module with no requirements, for
// gocmd's own tests.
package sub

// Answer is what main prints.
const Answer = 42
