// Package users is the article's Clean Architecture example, one package per
// ring so the compiler enforces the dependency rule (imports point inwards):
//
//	domain    User, its invariants, ErrNotFound/Invalid/Unavailable  imports nothing of ours
//	port      UserRepository, the interface the use cases need       → domain
//	service   UserService, the use cases                             → domain, port
//	httpapi   HTTP driver: routes, JSON, status codes                → domain
//	memory    adapter: map + mutex                                   → domain, port
//	postgres  adapter: pgx v5, schema part01                         → domain, port
//	contract  the tests every UserRepository must pass               → domain, port
//
// Only package main knows all of them: openAPI in ../demo_users.go picks an
// adapter (PostgreSQL with a connect timeout, or the in-memory one) and wires
// adapter → service → handler. TestDependencyRule checks the table above.
package users
