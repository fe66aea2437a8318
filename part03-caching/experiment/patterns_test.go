package experiment

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPatternsTour(t *testing.T) {
	const n = 80
	e := standIns(t, false)
	rep, err := e.RunPatterns(context.Background(), n)
	require.NoError(t, err)

	type want struct {
		readsToDB, staleReads int64
		article               ArticleLabels
	}
	wants := map[string]want{
		"cache-aside":   {n, 0, ArticleLabels{"Eventual", "Low", "Low"}},
		"read-through":  {n, 0, ArticleLabels{"Eventual", "Low", "Low"}},
		"write-through": {0, 0, ArticleLabels{"Strong", "High", "Very Low"}},
		"write-behind":  {0, 0, ArticleLabels{"Eventual", "Very Low", "High"}},
		"write-around":  {n, n, ArticleLabels{"Strong", "Low", "Low"}}, // "Strong", and every read after an update is stale
	}
	var got []string
	for _, r := range rep.Writes {
		got = append(got, r.Pattern)
		w := wants[r.Pattern]
		assert.Equal(t, w.article, r.Article, r.Pattern)
		assert.Equal(t, w.readsToDB, r.ReadsToDB, "%s: reads right after the writes that reached the database", r.Pattern)
		assert.EqualValues(t, w.staleReads, r.StaleReads, "%s: stale reads after an update", r.Pattern)
		assert.Zero(t, r.CloseLost, "%s: lost on a clean shutdown", r.Pattern)
		assert.Positive(t, r.WriteP50, r.Pattern)
		if r.Pattern == "write-behind" {
			assert.Equal(t, lossWindow, r.LossWindow)
			// What is buffered: the writes since the last flush (a full batch or the
			// 100 ms ticker, which a slow run may reach). RunPatterns checks that the
			// count agrees with the rows missing from the database.
			assert.LessOrEqual(t, r.CrashLost, lossWindow)
			assert.Less(t, r.DBWrites, int64(n), "write-behind batches")
			assert.EqualValues(t, n, r.RedisCommands, "one SET per write")
			continue
		}
		assert.Zero(t, r.CrashLost, r.Pattern)
		assert.EqualValues(t, n, r.DBWrites, "%s: one database write per write", r.Pattern)
	}
	assert.Equal(t, []string{"cache-aside", "read-through", "write-through", "write-behind", "write-around"}, got, "the article's order")
	assert.EqualValues(t, 1, rep.NegDBReads)
	assert.EqualValues(t, n, rep.NegDBReadsOff)
	assert.EqualValues(t, 1, rep.ColdDBReads, "read-through: database reads for %d concurrent cold readers", rep.ColdReaders)
}
