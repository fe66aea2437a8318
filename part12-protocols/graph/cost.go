package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/complexity"
	"github.com/vektah/gqlparser/v2"
)

// Cost is the article's cost model for gqlgen's complexity limit: a field
// costs its base cost (1 for an object or list, 0 for a scalar) times the
// product of its parents' multipliers, a list's multiplier being its limit
// (the schema's default, 10, when the query gives none). The query's cost is
// the sum over its fields. In gqlgen's terms a list field's complexity is
// 1 + limit × (its children's), an object's 1 + its children's.
//
// For the article's example, users(limit: 100) { posts(limit: 100) {
// comments { id } } } costs 1 + 100 + 100·100·1 = 10,101: comments alone is
// the article's 1 × 100 × 100 = 10,000. The article's whole DDoS query costs
// 1,210,101.
//
// A limit outside 1..MaxLimit costs Huge and every product saturates at Huge,
// so no limit argument and no nesting makes a query cheap by overflowing int
// (gqlgen itself ignores a custom cost under 1 and saturates its sums; the
// resolvers refuse such limits too).
func Cost() ComplexityRoot {
	var c ComplexityRoot
	object := func(child int) int { return saturate(1 + child) }
	c.Query.Users = list
	c.Query.Ping = func(child int, _ string) int { return object(child) }
	c.User.Posts = list
	c.Post.Author = object
	c.Post.Comments = list
	c.Comment.Author = object
	return c
}

// CostOptions make scalars cost 0 (gqlgen's default is 1, and it ignores a
// custom complexity under 1, so this is the way to say it).
var CostOptions = []complexity.Option{complexity.WithFixedScalarValue(0)}

// Huge is the cost of anything at or past it: far over any limit, far under
// the sums that would overflow.
const Huge = 1 << 40

func list(child, limit int) int {
	if limit < 1 || limit > MaxLimit || child >= Huge/limit {
		return Huge
	}
	return saturate(1 + limit*child)
}

func saturate(n int) int { return min(n, Huge) }

// QueryCost returns the cost of query as NewHandler computes it, without
// running it.
func QueryCost(query string, vars map[string]any) (int, error) {
	es := NewExecutableSchema(Config{Resolvers: &resolver{}, Complexity: Cost()})
	doc, errs := gqlparser.LoadQueryWithRules(es.Schema(), query, nil)
	if len(errs) > 0 {
		return 0, errs
	}
	if len(doc.Operations) != 1 {
		return 0, fmt.Errorf("graph: want one operation, the query has %d", len(doc.Operations))
	}
	return complexity.Calculate(context.Background(), es, doc.Operations[0], vars, CostOptions...), nil
}
