package partition

import (
	"testing"

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

// Each row of the table must behave, during a partition, the way its label
// says: a PA system answers G2's read with the stale value, a PC system
// refuses it. The simulation runs the row's mode through Gilbert and Lynch's
// scenario.
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

			c, err := New(row.IfPartition, 2)
			require.NoError(t, err)
			_, err = c.Write(1, "x", "v0")
			require.NoError(t, err)
			require.NoError(t, c.Partition(1))
			_, werr := c.Write(1, "x", "v1") // W(v1) reaches G1
			got, rerr := c.Read(2, "x")      // R(x) reaches G2
			switch row.IfPartition {
			case AP:
				require.NoError(t, werr)
				require.NoError(t, rerr)
				assert.Equal(t, "v0", got.Data, "PA answers with stale data")
			case CP:
				assert.ErrorIs(t, werr, ErrNoQuorum)
				assert.ErrorIs(t, rerr, ErrNoQuorum, "PC does not answer")
			}
		})
	}
}
