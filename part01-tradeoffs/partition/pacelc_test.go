package partition

import "testing"

func TestArticleTable(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"Cassandra / ScyllaDB": "PA/EL",
		"DynamoDB":             "PA/EL",
		"Spanner":              "PC/EC",
		"MongoDB":              "PC/EC", // as the article has it; see Caveat
		"OceanBase":            "PC/EC",
	}
	got := Article()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for _, c := range got {
		if w, ok := want[c.System]; !ok || c.Label() != w {
			t.Errorf("%s = %s, want %s", c.System, c.Label(), w)
		}
		if c.Mechanism == "" {
			t.Errorf("%s has no mechanism", c.System)
		}
	}
	// Article returns a fresh slice: callers may sort or edit it.
	got[0].System = "edited"
	if Article()[0].System == "edited" {
		t.Error("Article shares its backing array between calls")
	}
}
