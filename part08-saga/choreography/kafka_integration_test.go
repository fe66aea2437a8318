//go:build integration

package choreography

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
)

// The same flow over the stack's Kafka, every event delivered twice.
func TestChoreographyOnKafka(t *testing.T) {
	stack.Require(t, stack.Kafka)
	bus, err := NewKafka(t.Context(), stack.KafkaBrokers(), "part08.choreography."+strings.ToLower(rand.Text()[:8]))
	require.NoError(t, err)
	defer func() { assert.NoError(t, bus.Close()) }()
	s, traces := flow(t, bus, true)
	checkFlow(t, s, traces)
}
