package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/part12-protocols/ping"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// ArticleQuery is the article's "DDoS" query, verbatim.
const ArticleQuery = `query DDoS {
  users(limit: 100) {
    posts(limit: 100) {
      comments {
        author {
          posts {
            comments {
              id
            }
          }
        }
      }
    }
  }
}`

// response is a GraphQL answer.
type response struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// post sends query to h as a client would and decodes the answer.
func post(t *testing.T, h http.Handler, query string) (int, response) {
	t.Helper()
	code, r, err := postNoRequire(h, query)
	require.NoError(t, err)
	return code, r
}

// postNoRequire is post for a goroutine other than the test's.
func postNoRequire(h http.Handler, query string) (int, response, error) {
	body, err := json.Marshal(map[string]string{"query": query})
	if err != nil {
		return 0, response{}, err
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var r response
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		return rec.Code, r, fmt.Errorf("%w: %s", err, rec.Body.String())
	}
	return rec.Code, r, nil
}

// The article's cost model: comments nested under posts(limit: 100) under
// users(limit: 100) costs 1 × 100 × 100 = 10,000 (the query minus comments
// costs 101, with them 10,101), and the article's whole query is rejected at
// the limit of 500 with its cost named, before any resolver runs.
func TestArticleCostRejectedAt500(t *testing.T) {
	without, err := QueryCost(`{ users(limit: 100) { posts(limit: 100) { id } } }`, nil)
	require.NoError(t, err)
	with, err := QueryCost(`{ users(limit: 100) { posts(limit: 100) { comments { id } } } }`, nil)
	require.NoError(t, err)
	assert.Equal(t, 101, without)
	assert.Equal(t, 10_000, with-without, "the article's 1 × 100 × 100")

	full, err := QueryCost(ArticleQuery, nil)
	require.NoError(t, err)
	assert.Equal(t, 1_210_101, full, "the article's whole query, every field counted")

	store := NewMemory(Shape{Users: 3, PostsPerUser: 2, CommentsPerPost: 1})
	h := NewHandler(Options{Store: store, Ping: &ping.Service{}})
	code, r := post(t, h, ArticleQuery)
	assert.Equal(t, http.StatusOK, code, "gqlgen answers application/json with 200 and the error (its doc says 422)")
	require.Len(t, r.Errors, 1)
	assert.Equal(t, "operation has complexity 1210101, which exceeds the limit of 500", r.Errors[0].Message)
	assert.Equal(t, "COMPLEXITY_LIMIT_EXCEEDED", r.Errors[0].Extensions["code"])
	assert.Zero(t, store.Calls.Load(), "nothing ran")

	c, err := QueryCost(`{ users(limit: 10) { posts(limit: 5) { title } } }`, nil)
	require.NoError(t, err)
	assert.Equal(t, 11, c, "1 + 10 × (1 + 5 × 0): scalars are free")
	code, r = post(t, h, `{ users(limit: 10) { posts(limit: 5) { title } } }`)
	assert.Equal(t, http.StatusOK, code)
	assert.Empty(t, r.Errors)
}

// A limit the resolvers would refuse cannot make a query cheap either: a
// negative limit costs Huge instead of a negative number, and the sums
// saturate instead of wrapping around.
func TestBadLimitsCannotDodgeTheCost(t *testing.T) {
	for _, q := range []string{
		`{ users(limit: -1000000) { posts(limit: 100) { comments { id } } } }`,
		`{ users(limit: 0) { name } }`,
		`{ users(limit: 101) { name } }`,
		`{ users(limit: 100) { posts(limit: 100) { comments(limit: 100) { author { posts(limit: 100) { comments(limit: 100) { author { posts(limit: 100) { id } } } } } } } } }`,
	} {
		c, err := QueryCost(q, nil)
		require.NoError(t, err)
		assert.Greater(t, c, DefaultCostLimit, q)
	}
	store := NewMemory(Shape{Users: 3, PostsPerUser: 1, CommentsPerPost: 1})
	h := NewHandler(Options{Store: store, Ping: &ping.Service{}, CostLimit: Huge})
	_, r := post(t, h, `{ users(limit: -1) { name } }`)
	require.Len(t, r.Errors, 1, "with no cost limit at all the resolver still refuses it")
	assert.Equal(t, "limit -1 is out of range 1..100", r.Errors[0].Message)
}

// Bad requests get GraphQL errors, not a crash.
func TestBadQueries(t *testing.T) {
	h := NewHandler(Options{Store: NewMemory(Shape{Users: 1}), Ping: &ping.Service{}})
	for q, msg := range map[string]string{
		`{ users { nope } }`:           `Cannot query field "nope" on type "User".`,
		`{ users(limit: "x") { id } }`: "Int cannot represent non-integer value",
		`{ users `:                     "Expected Name, found <EOF>",
	} {
		_, r := post(t, h, q)
		require.NotEmpty(t, r.Errors, q)
		assert.Contains(t, strings.ToLower(r.Errors[0].Message), strings.ToLower(msg), q)
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query":"`+strings.Repeat(" ", MaxBodyBytes)+`{ users { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, "a body over MaxBodyBytes: %s", rec.Body.String())
	assert.Contains(t, rec.Body.String(), "request body too large")
}

// gqlparser's OverlappingFieldsCanBeMerged rule compares every pair of
// fields with the same response name, so a query that repeats one field n
// times costs n² comparisons. Validation runs before the cost limit and does
// not watch the request's deadline: 12,000 repeats of `name` fit under
// MaxBodyBytes and took 16 s of CPU, and a GET, whose query string no body
// limit bounds, 250 KB of them more than six minutes. The parser's token
// limit refuses both before validation.
func TestRepeatedFieldsAreRefusedBeforeValidation(t *testing.T) {
	store := NewMemory(Shape{Users: 3, PostsPerUser: 1, CommentsPerPost: 1})
	h := NewHandler(Options{Store: store, Ping: &ping.Service{}})
	q := "{ users(limit: 1) { " + strings.Repeat("name ", 12_000) + "} }"
	require.Less(t, len(q)+len(`{"query":""}`), MaxBodyBytes, "under the body limit")
	code, r := post(t, h, q)
	require.Len(t, r.Errors, 1, "POST: refused")
	assert.Equal(t, fmt.Sprintf("exceeded token limit of %d", MaxTokens), r.Errors[0].Message)
	assert.Equal(t, http.StatusUnprocessableEntity, code)

	req := httptest.NewRequest(http.MethodGet, "/graphql?query="+url.QueryEscape("{ users(limit: 1) { "+strings.Repeat("name ", 50_000)+"} }"), nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Contains(t, rec.Body.String(), fmt.Sprintf("exceeded token limit of %d", MaxTokens), "GET: refused")
	assert.Zero(t, store.Calls.Load(), "nothing ran")

	_, r = post(t, h, ArticleQuery)
	require.Len(t, r.Errors, 1)
	assert.Contains(t, r.Errors[0].Message, "operation has complexity", "the article's query is far under the token limit: the cost limit refuses it")
}

// The article's defence against abusive queries is the cost limit alone:
// "the gateway parses the Query AST … to calculate the complexity cost
// before execution … immediately rejects the request". A query that repeats
// one scalar field costs 1 in the article's model (scalars are free), so the
// cost limit lets it through, and validation, which runs before the cost is
// computed, has already spent time quadratic in its length (12,000 repeats:
// 16 s; BenchmarkLongestQuery for what MaxTokens leaves). The article's
// gateway (no token limit) answers 600 repeats; this chapter's refuses them
// unvalidated.
func TestArticleCostLimitMissesRepeatedFields(t *testing.T) {
	q := "{ users(limit: 1) { " + strings.Repeat("name ", 600) + "} }"
	c, err := QueryCost(q, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, c, "600 fields, cost 1: far under the limit of 500")

	store := NewMemory(Shape{Users: 3, PostsPerUser: 1, CommentsPerPost: 1})
	_, r := post(t, NewHandler(Options{Store: store, Ping: &ping.Service{}, MaxTokens: -1}), q)
	assert.Empty(t, r.Errors, "the article's gateway: validated, costed at 1, run")

	_, r = post(t, NewHandler(Options{Store: store, Ping: &ping.Service{}}), q)
	require.Len(t, r.Errors, 1)
	assert.Equal(t, fmt.Sprintf("exceeded token limit of %d", MaxTokens), r.Errors[0].Message, "refused before validation")
}

// nested is the query the N+1 tests run: 20 users, 5 posts each, 3
// comments a post, each comment's author.
const nested = `{ users(limit: 20) { name posts(limit: 5) { title comments(limit: 3) { body author { name } } } } }`

// The N+1, counted on the in-memory store: without DataLoaders every user's
// posts, every post's comments and every comment's author is its own call;
// with them, one call per level. Both answers are the same. In a synctest
// bubble the loaders' 5 ms wait ends only once every resolver of the level
// has asked, so the count is exact.
func TestDataLoaderTurnsNPlusOneIntoOneCallPerLevel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shape := Shape{Users: 30, PostsPerUser: 6, CommentsPerPost: 4}
		naive := NewMemory(shape)
		_, r1 := post(t, NewHandler(Options{Store: naive, Ping: &ping.Service{}, NoDataLoader: true}), nested)
		require.Empty(t, r1.Errors)
		assert.EqualValues(t, 1+20+20*5+20*5*3, naive.Calls.Load(), "1 + 20 + 100 + 300")

		batched := NewMemory(shape)
		_, r2 := post(t, NewHandler(Options{Store: batched, Ping: &ping.Service{}}), nested)
		require.Empty(t, r2.Errors)
		assert.EqualValues(t, 4, batched.Calls.Load(), "users, posts, comments, authors")
		assert.JSONEq(t, string(r1.Data), string(r2.Data), "the same answer")
	})
}

// Ping through GraphQL; the answer holds the fields the query selects and
// no others (the comparison table's "over-fetching … natively solved by
// client field selectors").
func TestPingOverGraphQL(t *testing.T) {
	h := NewHandler(Options{Store: NewMemory(Shape{}), Ping: &ping.Service{}})
	_, r := post(t, h, `{ ping(message: "hi") { message timestampMs } }`)
	require.Empty(t, r.Errors)
	assert.Contains(t, string(r.Data), `"message":"hi"`)
	assert.Contains(t, string(r.Data), `"timestampMs":"`)

	_, r = post(t, h, `{ ping(message: "hi") { message } }`)
	require.Empty(t, r.Errors)
	assert.JSONEq(t, `{"ping":{"message":"hi"}}`, string(r.Data), "only the field asked for")
}

// The DataLoaders cache for one request, as the article says, and no
// longer: within a request a key asked again at a deeper level is not
// fetched again; a second request fetches everything afresh.
func TestLoadersCacheForOneRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := NewMemory(Shape{Users: 5, PostsPerUser: 3, CommentsPerPost: 1})
		h := NewHandler(Options{Store: store, Ping: &ping.Service{}})
		// the posts' authors are the users themselves: the second level asks
		// the loaders for the keys the first level already loaded
		q := `{ users(limit: 2) { posts(limit: 1) { author { name posts(limit: 1) { author { name } } } } } }`
		_, r := post(t, h, q)
		require.Empty(t, r.Errors)
		assert.EqualValues(t, 3, store.Calls.Load(), "users, posts, authors; the second level's posts and authors from the cache")
		_, r = post(t, h, q)
		require.Empty(t, r.Errors)
		assert.EqualValues(t, 6, store.Calls.Load(), "the second request shares nothing with the first")
	})
}

func TestQueryCostRefusesInvalidQueries(t *testing.T) {
	_, err := QueryCost(`{ users { nope } }`, nil)
	assert.ErrorContains(t, err, `Cannot query field "nope"`)
	_, err = QueryCost(`{ users { id } } { users { id } }`, nil)
	assert.Error(t, err)
}

// FuzzQuery: any query text gets a JSON answer (data or errors), never a
// panic or a 5xx.
func FuzzQuery(f *testing.F) {
	for _, q := range []string{nested, ArticleQuery, `{ ping(message: "x") { message } }`, `{ users(limit: -1) { id } }`, `{`, `query { users { posts { author { posts { id } } } } }`, `{ __schema { types { name } } }`} {
		f.Add(q)
	}
	store := NewMemory(Shape{Users: 5, PostsPerUser: 2, CommentsPerPost: 2})
	h := NewHandler(Options{Store: store, Ping: &ping.Service{}})
	f.Fuzz(func(t *testing.T, q string) {
		body, err := json.Marshal(map[string]string{"query": q})
		require.NoError(t, err)
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Less(t, rec.Code, 500, "%q -> %d", q, rec.Code)
		assert.True(t, json.Valid(rec.Body.Bytes()), "%q -> %s", q, rec.Body)
	})
}

// BenchmarkLongestQuery is what MaxTokens leaves a client: one request of
// about MaxTokens tokens that repeats a field, validation's worst case
// (repeats=name), or a field with a selection of its own, whose pairs are
// compared field by field (repeats=posts). Both are under the cost limit and
// answered. limit=none is the article's gateway (no token limit) with twice
// the repeats: validation's time grows with their square.
func BenchmarkLongestQuery(b *testing.B) {
	store := NewMemory(Shape{Users: 1, PostsPerUser: 1})
	for _, c := range []struct {
		name, field string
		tokens      int // the query's length, about
		maxTokens   int // Options.MaxTokens
	}{
		{"limit=500/repeats=name", "name ", MaxTokens, 0},
		{"limit=500/repeats=posts", "posts { title } ", MaxTokens, 0},
		{"limit=none/repeats=name", "name ", 2 * MaxTokens, -1},
	} {
		h := NewHandler(Options{Store: store, Ping: &ping.Service{}, MaxTokens: c.maxTokens})
		q := "{ users(limit: 1) { " + strings.Repeat(c.field, (c.tokens-10)/len(strings.Fields(c.field))) + "} }"
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				_, r, err := postNoRequire(h, q)
				if err != nil || len(r.Errors) > 0 {
					b.Fatal(err, r.Errors)
				}
			}
		})
	}
}
