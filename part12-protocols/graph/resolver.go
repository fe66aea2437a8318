package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vikstrous/dataloadgen"

	pingv1 "github.com/sysdesign-masterclass/golang/part12-protocols/gen/ping/v1"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

// Defaults of Options.
const (
	DefaultCostLimit = 500                  // the article's example limit
	DefaultWait      = 5 * time.Millisecond // the article's DataLoader tick
	MaxLimit         = 100                  // the largest limit argument a list takes
	MaxBodyBytes     = 64 << 10             // a request body
	DefaultTimeout   = 10 * time.Second     // a whole request
	// MaxTokens bounds a query's length in tokens (names, punctuation,
	// values) before it is validated: validation compares every pair of
	// same-named fields, so its cost grows with the square of the query's
	// length, and the cost limit only runs after it. The article's query is
	// 33 tokens.
	MaxTokens = 500
)

// Options set up NewHandler.
type Options struct {
	Store Store
	Ping  *ping.Service
	// NoDataLoader resolves every nested list with its own query: the N+1
	// the article warns about, kept one option away so it can be counted.
	NoDataLoader bool
	// Wait is how long a DataLoader collects keys before it queries
	// (DefaultWait when 0).
	Wait time.Duration
	// CostLimit refuses a query whose cost (Cost) is over it before anything
	// runs (DefaultCostLimit when 0).
	CostLimit int
	// Timeout bounds a request, its queries included (DefaultTimeout when
	// 0): a database that stops answering costs a client an error, not a
	// hung connection.
	Timeout time.Duration
	// MaxTokens refuses a longer query before it is validated (the constant
	// MaxTokens when 0; -1 for no limit, the article's gateway, whose only
	// defence is the cost limit).
	MaxTokens int
}

// NewHandler serves the schema over HTTP POST and GET with the cost limit
// and, unless NoDataLoader, request-scoped DataLoaders.
func NewHandler(c Options) http.Handler {
	if c.Wait == 0 {
		c.Wait = DefaultWait
	}
	if c.CostLimit == 0 {
		c.CostLimit = DefaultCostLimit
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch c.MaxTokens {
	case 0:
		c.MaxTokens = MaxTokens
	case -1:
		c.MaxTokens = 0 // gqlgen's "no limit"
	}
	srv := handler.New(NewExecutableSchema(Config{Resolvers: &resolver{c}, Complexity: Cost()}))
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetParserTokenLimit(c.MaxTokens)
	srv.Use(extension.FixedComplexityLimit(c.CostLimit, CostOptions...))
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		if !c.NoDataLoader {
			ctx = context.WithValue(ctx, loadersKey{}, newLoaders(c.Store, c.Wait))
		}
		return next(ctx)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			status := http.StatusBadRequest
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				status = http.StatusRequestEntityTooLarge
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": "request body: " + err.Error()}}})
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ctx, cancel := context.WithTimeout(r.Context(), c.Timeout)
		defer cancel()
		srv.ServeHTTP(w, r.WithContext(ctx))
	})
}

type resolver struct{ c Options }

func (r *resolver) Query() QueryResolver     { return (*queryResolver)(r) }
func (r *resolver) User() UserResolver       { return (*userResolver)(r) }
func (r *resolver) Post() PostResolver       { return (*postResolver)(r) }
func (r *resolver) Comment() CommentResolver { return (*commentResolver)(r) }

type (
	queryResolver   resolver
	userResolver    resolver
	postResolver    resolver
	commentResolver resolver
)

func checkLimit(limit int) error {
	if limit < 1 || limit > MaxLimit {
		return gqlerror.Errorf("limit %d is out of range 1..%d", limit, MaxLimit)
	}
	return nil
}

func (q *queryResolver) Users(ctx context.Context, limit int) ([]*User, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	return q.c.Store.Users(ctx, limit)
}

func (q *queryResolver) Ping(ctx context.Context, message string) (*Ping, error) {
	resp, err := q.c.Ping.Ping(ctx, &pingv1.PingRequest{Message: message})
	if err != nil {
		return nil, err
	}
	return &Ping{Message: resp.GetMessage(), TimestampMs: strconv.FormatInt(resp.GetTimestampMs(), 10)}, nil
}

func (u *userResolver) Posts(ctx context.Context, obj *User, limit int) ([]*Post, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if l := loadersFrom(ctx); l != nil {
		return l.posts.Load(ctx, parentKey{obj.ID, limit})
	}
	return u.c.Store.PostsByUser(ctx, []int{obj.ID}, limit)
}

func (p *postResolver) Comments(ctx context.Context, obj *Post, limit int) ([]*Comment, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if l := loadersFrom(ctx); l != nil {
		return l.comments.Load(ctx, parentKey{obj.ID, limit})
	}
	return p.c.Store.CommentsByPost(ctx, []int{obj.ID}, limit)
}

func (p *postResolver) Author(ctx context.Context, obj *Post) (*User, error) {
	return (*resolver)(p).user(ctx, obj.UserID)
}

func (c *commentResolver) Author(ctx context.Context, obj *Comment) (*User, error) {
	return (*resolver)(c).user(ctx, obj.AuthorID)
}

func (r *resolver) user(ctx context.Context, id int) (*User, error) {
	if l := loadersFrom(ctx); l != nil {
		return l.users.Load(ctx, id)
	}
	us, err := r.c.Store.UsersByID(ctx, []int{id})
	if err != nil {
		return nil, err
	}
	if len(us) == 0 {
		return nil, fmt.Errorf("user %d not found", id)
	}
	return us[0], nil
}

// parentKey is a DataLoader key: a parent's ID and the limit of its list.
type parentKey struct{ ID, Limit int }

// loaders are one request's DataLoaders: each batches the keys asked for
// within Wait into one Store call, and caches answers for the request.
type loaders struct {
	users    *dataloadgen.Loader[int, *User]
	posts    *dataloadgen.Loader[parentKey, []*Post]
	comments *dataloadgen.Loader[parentKey, []*Comment]
}

type loadersKey struct{}

func loadersFrom(ctx context.Context) *loaders {
	l, _ := ctx.Value(loadersKey{}).(*loaders)
	return l
}

func newLoaders(s Store, wait time.Duration) *loaders {
	opt := dataloadgen.WithWait(wait)
	return &loaders{
		users: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []int) (map[int]*User, error) {
			us, err := s.UsersByID(ctx, ids)
			m := make(map[int]*User, len(us))
			for _, u := range us {
				m[u.ID] = u
			}
			return m, err
		}, opt),
		posts:    dataloadgen.NewLoader(byParent(s.PostsByUser, func(p *Post) int { return p.UserID }), opt),
		comments: dataloadgen.NewLoader(byParent(s.CommentsByPost, func(c *Comment) int { return c.PostID }), opt),
	}
}

// byParent turns a Store method over many parents into a DataLoader fetch:
// one call per distinct limit in the batch (one, for a query that asks the
// same limit everywhere), its rows handed back to each parent.
func byParent[T any](fetch func(context.Context, []int, int) ([]T, error), parent func(T) int) func(context.Context, []parentKey) ([][]T, []error) {
	return func(ctx context.Context, keys []parentKey) ([][]T, []error) {
		ids := map[int][]int{} // limit -> parent ids
		for _, k := range keys {
			ids[k.Limit] = append(ids[k.Limit], k.ID)
		}
		rows := map[parentKey][]T{}
		for limit, ps := range ids {
			got, err := fetch(ctx, ps, limit)
			if err != nil {
				return nil, []error{err}
			}
			for _, r := range got {
				k := parentKey{parent(r), limit}
				rows[k] = append(rows[k], r)
			}
		}
		out := make([][]T, len(keys))
		for i, k := range keys {
			out[i] = rows[k]
		}
		return out, nil
	}
}
