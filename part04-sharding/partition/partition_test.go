package partition

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const appendPlan = `[{"Plan": {"Node Type": "Aggregate", "Plans": [{"Node Type": "Append", "Subplans Removed": 2, "Plans": [
	{"Node Type": "Seq Scan", "Relation Name": "transaction_log_2026_07", "Alias": "t"},
	{"Node Type": "Bitmap Heap Scan", "Relation Name": "transaction_log_2026_06", "Plans": [
		{"Node Type": "Bitmap Index Scan", "Index Name": "transaction_log_2026_06_pkey"}]}]}]}}]`

func TestParsePlan(t *testing.T) {
	p, err := ParsePlan([]byte(appendPlan))
	require.NoError(t, err)
	assert.Equal(t, 2, p.Removed)
	assert.Equal(t, []string{"transaction_log_2026_06", "transaction_log_2026_07"}, p.Relations())
	assert.Equal(t, []Scan{
		{Node: "Seq Scan", Relation: "transaction_log_2026_07"},
		{Node: "Bitmap Heap Scan", Relation: "transaction_log_2026_06"},
		{Node: "Bitmap Index Scan", Index: "transaction_log_2026_06_pkey"},
	}, p.Scans)
	for in, msg := range map[string]string{
		``:                                      "unexpected end of JSON input",
		`{}`:                                    "cannot unmarshal object",
		`[]`:                                    "want one plan",
		`[{"Plan": null}]`:                      "want one plan",
		`[{"Plan": {"Plans": [{"Plans": 5}]}}]`: "cannot unmarshal number",
		`[{"Plan": ` + strings.Repeat(`{"Plans": [`, 120) + `{}` + strings.Repeat(`]}`, 120) + `}]`: "deeper than 100",
	} {
		_, err := ParsePlan([]byte(in))
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), msg)
	}
}

// FuzzParsePlan: any bytes are a plan or an error, never a panic.
func FuzzParsePlan(f *testing.F) {
	f.Add([]byte(appendPlan))
	f.Add([]byte(`[{"Plan": {"Node Type": "Result"}}]`))
	f.Add([]byte(`[{"Plan": {"Plans": [{"Plans": [{}]}]}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePlan(b)
		if err != nil {
			return
		}
		for _, s := range p.Scans {
			if s.Relation == "" && s.Index == "" {
				t.Fatalf("a scan of nothing: %+v", s)
			}
		}
		rels := p.Relations()
		for i := 1; i < len(rels); i++ {
			if rels[i-1] >= rels[i] {
				t.Fatalf("relations not sorted and unique: %q", rels)
			}
		}
	})
}
