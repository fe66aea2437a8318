// Package graph is the article's GraphQL gateway over PostgreSQL with the two
// defences the article names: a cost limit computed from the query before it
// runs, and DataLoaders that turn the N+1 queries of nested lists into one
// query per level.
package graph

//go:generate go tool gqlgen generate --config gqlgen.yml
