package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Cluster is a Router over one Store per shard.
type Cluster struct {
	Router Router
	Shards []Store
}

// NewCluster returns the cluster, or an error if the router spreads over more
// shards than there are stores.
func NewCluster(r Router, shards ...Store) (*Cluster, error) {
	if r.Shards() > len(shards) {
		return nil, fmt.Errorf("shard: %s needs %d shards, got %d stores", r, r.Shards(), len(shards))
	}
	return &Cluster{Router: r, Shards: shards}, nil
}

// route returns the store that owns id.
func (c *Cluster) route(ctx context.Context, id int64) (int, Store, error) {
	i, err := c.Router.Route(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	return i, c.Shards[i], nil
}

// Put stores u on its shard.
func (c *Cluster) Put(ctx context.Context, u User) error {
	i, s, err := c.route(ctx, u.ID)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, u); err != nil {
		return &ShardError{Shard: i, Name: s.Name(), Op: fmt.Sprintf("put user %d", u.ID), Err: err}
	}
	return nil
}

// Load puts users on their shards, one Put per shard.
func (c *Cluster) Load(ctx context.Context, users []User) error {
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	routes, err := RouteAll(ctx, c.Router, ids)
	if err != nil {
		return err
	}
	per := make([][]User, len(c.Shards))
	for i, u := range users {
		per[routes[i]] = append(per[routes[i]], u)
	}
	for i, us := range per {
		if err := c.Shards[i].Put(ctx, us...); err != nil {
			return &ShardError{Shard: i, Name: c.Shards[i].Name(), Op: fmt.Sprintf("put %d users", len(us)), Err: err}
		}
	}
	return nil
}

// Counts returns how many users each shard holds.
func (c *Cluster) Counts(ctx context.Context) ([]int64, error) {
	out := make([]int64, len(c.Shards))
	for i, s := range c.Shards {
		n, err := s.Count(ctx)
		if err != nil {
			return nil, &ShardError{Shard: i, Name: s.Name(), Op: "count", Err: err}
		}
		out[i] = n
	}
	return out, nil
}

// Get reads the user with id from its shard.
func (c *Cluster) Get(ctx context.Context, id int64) (User, error) {
	i, s, err := c.route(ctx, id)
	if err != nil {
		return User{}, err
	}
	u, err := s.Get(ctx, id)
	if err != nil {
		return User{}, &ShardError{Shard: i, Name: s.Name(), Op: fmt.Sprintf("get user %d", id), Err: err}
	}
	return u, nil
}

// Page is one page of a scatter-gather query.
type Page struct {
	Users []User
	// Next is where the next page starts; nil when this page is the last.
	Next *Cursor
	// Missing lists the shards that failed, when the query allowed a partial
	// result: Users then holds the top users of the other shards only.
	Missing []*ShardError
}

// Partial reports whether shards are missing from the page.
func (p Page) Partial() bool { return len(p.Missing) > 0 }

// TopOptions shapes a Top query.
type TopOptions struct {
	Limit int     // users per page (> 0)
	After *Cursor // start after this cursor; nil for the first page
	// AllowPartial returns what the answering shards hold, listing the others
	// in Page.Missing, instead of failing when a shard fails.
	AllowPartial bool
}

// Top returns the first Limit users in Before order across every shard: each
// shard answers its own top Limit after the cursor, concurrently, and a k-way
// merge keeps the global top Limit. Without AllowPartial any failing shard
// fails the query, with every failing shard named.
func (c *Cluster) Top(ctx context.Context, o TopOptions) (Page, error) {
	if o.Limit <= 0 {
		return Page{}, fmt.Errorf("shard: top: limit %d must be positive", o.Limit)
	}
	lists := make([][]User, len(c.Shards))
	errs := make([]error, len(c.Shards))
	var wg sync.WaitGroup
	for i, s := range c.Shards {
		wg.Go(func() {
			us, err := s.Top(ctx, o.After, o.Limit)
			if err != nil {
				errs[i] = &ShardError{Shard: i, Name: s.Name(), Op: fmt.Sprintf("top %d", o.Limit), Err: err}
				return
			}
			lists[i] = us
		})
	}
	wg.Wait()
	var p Page
	for _, err := range errs {
		var se *ShardError
		if errors.As(err, &se) {
			p.Missing = append(p.Missing, se)
		}
	}
	if p.Partial() && !o.AllowPartial {
		return Page{}, fmt.Errorf("shard: top %d: %d of %d shards failed: %w", o.Limit, len(p.Missing), len(c.Shards), errors.Join(errs...))
	}
	p.Users = Merge(lists, o.Limit)
	if len(p.Users) == o.Limit {
		last := p.Users[len(p.Users)-1]
		p.Next = &Cursor{Score: last.Score, ID: last.ID}
	}
	return p, nil
}

// Merge returns the first limit users of lists, each already in Before order,
// in Before order: a k-way merge that takes the best head each step, O(limit ×
// len(lists)), which beats a heap for the few shards a query fans out to.
func Merge(lists [][]User, limit int) []User {
	heads := make([]int, len(lists))
	out := make([]User, 0, limit)
	for len(out) < limit {
		best := -1
		for i, l := range lists {
			if heads[i] < len(l) && (best < 0 || Before(l[heads[i]], lists[best][heads[best]])) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out = append(out, lists[best][heads[best]])
		heads[best]++
	}
	return out
}
