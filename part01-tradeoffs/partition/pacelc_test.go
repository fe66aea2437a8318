package partition

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLabel(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		p    Mode
		e    Else
		want string
	}{
		{AP, Latency, "PA/EL"},
		{AP, Consistency, "PA/EC"},
		{CP, Latency, "PC/EL"},
		{CP, Consistency, "PC/EC"},
		{Mode(0), Else(0), "P?/Else(0)"},
	} {
		assert.Equal(t, tt.want, Classification{IfPartition: tt.p, Else: tt.e}.Label())
	}
}

// wlPACELC is the workload the label tests and the demo measure with: N = 3,
// half writes, replication lag, and a lognormal replica delay (median 1 ms).
var wlPACELC = Workload{Ops: 4000, Keys: 16, Writes: 0.5, Lag: 0.2, Delay: Delay{Median: time.Millisecond, Sigma: 0.5}, Seed: 1}

// Each row's label must follow from its mechanism, not from its label: the
// row's default levels (Write, Read) run on a partitioned and on a healthy
// cluster, and the measured behaviour gives the label: PA if a read on the
// minority side is answered, PC if refused; EL if a healthy read can be
// stale, EC if none is. The same measurement gives the other labels for the
// configurations the caveats name that levels can express (Cassandra at
// QUORUM, DynamoDB's strongly consistent reads), so the test fails if a row's
// levels do not produce its label. MongoDB's w:1 is not among them: a write is
// acknowledged by the primary and reads go to the primary by default, and
// this leaderless model has no primary (ONE/ONE would read any replica and
// measure PA/EL, where Abadi lists MongoDB PA/EC).
func TestArticleRowsBehaveAsLabelled(t *testing.T) {
	t.Parallel()
	rows := Article()
	require.NotEmpty(t, rows)
	systems := map[string]bool{}
	for _, row := range rows {
		t.Run(row.System, func(t *testing.T) {
			assert.False(t, systems[row.System], "listed twice")
			systems[row.System] = true
			assert.NotEmpty(t, row.Mechanism, "every label needs the mechanism behind it")
			assert.Regexp(t, `^P[AC]/E[LC]$`, row.Label())
			b, err := Measure(row.Write, row.Read, wlPACELC)
			require.NoError(t, err)
			assert.Equal(t, row.Label(), b.Label(), "%v writes, %v reads", row.Write, row.Read)
		})
	}
	for _, alt := range []struct {
		what string
		w, r Level
		want string
	}{
		{"Cassandra at QUORUM", Quorum, Quorum, "PC/EC"},
		{"DynamoDB, strongly consistent reads", Quorum, Quorum, "PC/EC"},
		{"QUORUM writes, ONE reads", Quorum, One, "PA/EL"},
		{"ONE writes, ALL reads", One, All, "PC/EC"},
	} {
		b, err := Measure(alt.w, alt.r, wlPACELC)
		require.NoError(t, err)
		assert.Equal(t, alt.want, b.Label(), alt.what)
	}
}

// PACELC's else branch, measured: with no partition, the more replicas a
// level waits for, the longer a request takes, at the median and in the
// tail; and only the pairs that pay for R + W > N never read stale.
func TestElseLatencyOrConsistency(t *testing.T) {
	t.Parallel()
	var prevRead, prevWrite [2]time.Duration
	for _, l := range []Level{One, Quorum, All} {
		b, err := Measure(l, l, wlPACELC)
		require.NoError(t, err)
		require.Len(t, b.Healthy.ReadTook, b.Healthy.Reads, "every healthy read answered and timed")
		require.Len(t, b.Healthy.WriteTook, b.Healthy.Writes)
		read := [2]time.Duration{b.ReadLatency(0.5), b.ReadLatency(0.99)}
		write := [2]time.Duration{b.WriteLatency(0.5), b.WriteLatency(0.99)}
		for i := range 2 {
			assert.Greater(t, read[i], prevRead[i], "%v: reads not slower than the level below", l)
			assert.Greater(t, write[i], prevWrite[i], "%v: writes not slower than the level below", l)
		}
		prevRead, prevWrite = read, write
		if l == One {
			assert.Positive(t, b.Healthy.StaleReads, "ONE/ONE answers fast and stale")
		} else {
			assert.Zero(t, b.Healthy.StaleReads, "%v/%v pays in latency for never reading stale", l, l)
		}
	}
	// Without a Delay nothing takes time.
	b, err := Measure(Quorum, Quorum, Workload{Ops: 200, Keys: 4, Writes: 0.5, Seed: 1})
	require.NoError(t, err)
	assert.Zero(t, b.ReadLatency(1))
	assert.Zero(t, b.WriteLatency(1))
}

// A request waits for the first answers its level needs: with three replicas
// each answering within the median delay half the time, a request at ONE is
// done within the median unless all three are slower (1 − 1/8 = 87.5%), at
// QUORUM half the time, at ALL only when all three are faster (12.5%).
func TestRequestsWaitForTheFirstAnswersTheLevelNeeds(t *testing.T) {
	t.Parallel()
	const n = 8000
	for _, tc := range []struct {
		l    Level
		want float64
	}{{One, 0.875}, {Quorum, 0.5}, {All, 0.125}} {
		c := newTunable(t, 3)
		c.SetDelay(Delay{Median: time.Millisecond, Sigma: 0.5})
		fastW, fastR := 0, 0
		for i := range n {
			_, took, err := c.WriteTimed(1+i%3, "k", fmt.Sprint(i), tc.l)
			require.NoError(t, err)
			if took < time.Millisecond {
				fastW++
			}
			_, took, err = c.ReadTimed(1+i%3, "k", tc.l)
			require.NoError(t, err)
			if took < time.Millisecond {
				fastR++
			}
		}
		assert.InDelta(t, tc.want, float64(fastW)/n, 0.025, "%v writes within the median", tc.l)
		assert.InDelta(t, tc.want, float64(fastR)/n, 0.025, "%v reads within the median", tc.l)
	}
}

// The article's table glosses Spanner's "external consistency" as
// linearizability. Linearizability is a property of each object alone; external
// consistency (strict serializability) is a property of transactions over many.
// Here every key is linearizable (QUORUM writes and reads on 3 replicas: each
// read returns the last write acknowledged before it), yet a transfer done as
// two single-key writes lets a reader between them see a total no serial order
// of whole transfers could produce.
func TestArticleLinearizableKeysAreNotExternalConsistency(t *testing.T) {
	t.Parallel()
	c := newTunable(t, 3)
	balance := func(key string) int {
		v, err := c.Read(2, key, Quorum)
		require.NoError(t, err)
		n, err := strconv.Atoi(v.Data)
		require.NoError(t, err)
		return n
	}
	for _, k := range []string{"checking", "savings"} {
		_, err := c.Write(1, k, "50", Quorum)
		require.NoError(t, err)
	}
	// Move 50 from checking to savings: two writes, each linearizable.
	_, err := c.Write(1, "checking", "0", Quorum)
	require.NoError(t, err)
	checking, savings := balance("checking"), balance("savings") // a reader between the two writes
	_, err = c.Write(1, "savings", "100", Quorum)
	require.NoError(t, err)
	assert.Equal(t, 0, checking, "the read sees the latest write of its key")
	assert.Equal(t, 50, savings, "…and of this one")
	assert.Equal(t, 50, checking+savings, "yet the total is 50: before the transfer it was 100, after it 100")
	assert.Equal(t, 100, balance("checking")+balance("savings"))
}
