// Package tools holds checks of the repository itself that need dependencies the
// chapters' module should not carry: the Compose file is validated with compose-go,
// the loader Docker Compose uses, without a Docker engine. `make test` runs it.
package tools
