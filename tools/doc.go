// Package tools holds checks of the repository itself, run by `make test` (and the
// CI workflow's lint job) from this separate module so that their dependencies stay
// out of the module readers import:
//
//   - compose: docker-compose.yml parses, validates with compose-go (the loader
//     Docker Compose uses) without a Docker engine, and agrees with scripts/stack
//     and the defaults in internal/stack;
//   - readme: every test, fuzz target, benchmark and example a chapter README names
//     exists in that chapter;
//   - hygiene: no test stops (t.Fatal, require.*) on a goroutine other than its own.
package tools
