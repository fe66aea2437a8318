package reshard

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseChange(t *testing.T) {
	for _, tt := range []struct {
		line string
		want change
	}{
		{`table public.users: INSERT: id[bigint]:1 name[text]:'a b''c' score[bigint]:5`, change{"public.users", "INSERT", []int64{1}}},
		{`table public.users: UPDATE: id[bigint]:1 name[text]:'id[bigint]:9' score[bigint]:9`, change{"public.users", "UPDATE", []int64{1}}},
		{`table public.users: UPDATE: old-key: id[bigint]:1 new-tuple: id[bigint]:2 name[text]:'x' score[bigint]:0`, change{"public.users", "UPDATE", []int64{1, 2}}},
		{`table public.users: DELETE: id[bigint]:-7`, change{"public.users", "DELETE", []int64{-7}}},
		{`table public.users: TRUNCATE: (no-flags)`, change{"public.users", "TRUNCATE", nil}},
		{`table public.fence: UPDATE: id[integer]:1 epoch[bigint]:2`, change{"public.fence", "UPDATE", []int64{1}}},
		{`table public.users: INSERT: id[bigint]:3 name[text]:'it''s' score[bigint]:null`, change{"public.users", "INSERT", []int64{3}}},
	} {
		got, err := parseChange(tt.line)
		require.NoError(t, err, tt.line)
		assert.Equal(t, tt.want, got, tt.line)
	}
	for _, line := range []string{"BEGIN", "COMMIT", "BEGIN 1203", "COMMIT 1203"} {
		_, err := parseChange(line)
		assert.ErrorIs(t, err, errNotAChange, line)
	}
	for line, msg := range map[string]string{
		"":                             "want BEGIN, COMMIT or a table row change",
		"table : INSERT: id[bigint]:1": "no table name",
		"table public.users: UPSERT: id[bigint]:1":                    `unknown operation "UPSERT"`,
		"table public.users: INSERT: name[text]:'x":                   "unterminated quote",
		"table public.users: INSERT: id[bigint]:x1":                   `id "x1"`,
		"table public.users: INSERT: name[text]:'x'":                  "no id column",
		"table public.users: INSERT: id[bigint:1":                     "has no \"]:\" after its type",
		"table public.users: INSERT: oops":                            "want column[type]:value",
		"table public.users: DELETE: id[bigint]:99999999999999999999": "value out of range",
	} {
		_, err := parseChange(line)
		require.Error(t, err, line)
		assert.Contains(t, err.Error(), msg, line)
	}
}

// FuzzParseChange: any line is parsed or refused with an error, never a
// panic, and an accepted row change names at least one id.
func FuzzParseChange(f *testing.F) {
	for _, s := range []string{
		`table public.users: INSERT: id[bigint]:1 name[text]:'a b''c' score[bigint]:5`,
		`table public.users: UPDATE: old-key: id[bigint]:1 new-tuple: id[bigint]:2 name[text]:'x' score[bigint]:0`,
		`table public.users: DELETE: id[bigint]:-7`,
		`table public.users: TRUNCATE: (no-flags)`,
		"BEGIN", "COMMIT 12", "table x: INSERT: id[bigint]:'9'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := parseChange(line)
		if err != nil {
			return
		}
		if c.op != "TRUNCATE" && len(c.ids) == 0 {
			t.Fatalf("%q: a row change without an id", line)
		}
		if !strings.HasPrefix(line, "table "+c.table+": ") {
			t.Fatalf("%q: table %q is not the line's", line, c.table)
		}
	})
}

func TestParseSpec(t *testing.T) {
	for s, want := range map[string]string{
		`{"kind":"jump","shards":3}`:                 "jump hash, 3 shards",
		`{"kind":"modulo","shards":2}`:               "hash % 2",
		`{"kind":"keyrange","shards":2}`:             "keyspace-id ranges -80 80-",
		`{"kind":"range","lower":[1,100],"end":199}`: "range 0:[1..99] 1:[100..199]",
	} {
		sp, err := ParseSpec(s)
		require.NoError(t, err, s)
		r, err := sp.Router()
		require.NoError(t, err)
		assert.Equal(t, want, r.String())
		again, err := ParseSpec(sp.String())
		require.NoError(t, err)
		assert.Equal(t, sp, again, "round trip")
	}
	for s, msg := range map[string]string{
		``:                                       "unexpected end of JSON input",
		`{"kind":"jump"}`:                        "want 1..1024 shards",
		`{"kind":"jump","shards":5000}`:          "want 1..1024 shards",
		`{"kind":"jump","shards":2,"end":5}`:     "no range bounds",
		`{"kind":"range","lower":[5,5],"end":9}`: "range bounds must increase",
		`{"kind":"range","shards":2}`:            "a range spec has lower bounds",
		`{"kind":"ring","shards":2}`:             "kind must be jump, modulo, keyrange or range",
		`{"kind":"range"}`:                       "at least one shard",
	} {
		_, err := ParseSpec(s)
		require.Error(t, err, s)
		assert.Contains(t, err.Error(), msg, s)
	}
}

// FuzzParseSpec: any text is a spec whose router routes, or an error.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{`{"kind":"jump","shards":3}`, `{"kind":"range","lower":[1,100],"end":199}`, `{"kind":"keyrange","shards":1024}`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSpec(s)
		if err != nil {
			return
		}
		r, err := sp.Router()
		if err != nil {
			t.Fatalf("%q parsed but has no router: %v", s, err)
		}
		if n := r.Shards(); n < 1 || n > MaxShards {
			t.Fatalf("%q: %d shards", s, n)
		}
	})
}
