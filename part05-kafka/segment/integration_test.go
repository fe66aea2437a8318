//go:build integration

package segment_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part05-kafka/internal/kafkatest"
	"github.com/sysdesign-masterclass/golang/part05-kafka/pipeline"
	"github.com/sysdesign-masterclass/golang/part05-kafka/segment"
)

// segmentFiles returns the first segment's .index and .log of partition 0
// of topic, from the log directory the broker reports (log.dirs): on this
// machine's disk for the native stack, copied out of the container for
// Docker Compose.
func segmentFiles(t *testing.T, topic string) (index, log []byte) {
	t.Helper()
	const first = "00000000000000000000"
	dirs, err := pipeline.BrokerConfig(t.Context(), stack.KafkaBrokers(), "log.dirs")
	require.NoError(t, err)
	dir, _, _ := strings.Cut(dirs, ",")
	part := filepath.Join(dir, topic+"-0")
	if _, err := os.Stat(part); err != nil { // the broker's disk is not ours: a container's
		tmp := t.TempDir()
		out, err := exec.Command("docker", "compose", "cp", "kafka:"+part, tmp).CombinedOutput()
		if err != nil {
			stack.SkipOrFail(t, fmt.Sprintf("the broker's log directory %s is not on this machine, and docker compose cp: %v %s", part, err, out))
		}
		part = filepath.Join(tmp, topic+"-0")
	}
	t.Logf("segment files from %s", part)
	index, err = os.ReadFile(filepath.Join(part, first+".index"))
	require.NoError(t, err)
	log, err = os.ReadFile(filepath.Join(part, first+".log"))
	require.NoError(t, err)
	return index, log
}

// Produce 3,000 messages of 200 bytes in batches of 10, then read the
// partition's real segment: the index entries are 4 KiB of batches apart and
// point at a batch's start and last offset, and for every offset the
// index lookup plus a short scan finds the batch a scan from the start does.
func TestLookupOnARealSegment(t *testing.T) {
	topic := kafkatest.Topic(t, 1)
	w := pipeline.NewWriter(pipeline.WriterConfig{Brokers: stack.KafkaBrokers(), Topic: topic, BatchSize: 10})
	const n = 3000
	value := bytes.Repeat([]byte("x"), 200)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for i := 0; i < n; i += 10 {
		msgs := make([]kafka.Message, 10)
		for j := range msgs {
			msgs[j] = kafka.Message{Key: []byte(fmt.Sprint(i + j)), Value: value}
		}
		require.NoError(t, w.WriteMessages(ctx, msgs...))
	}
	_ = w.Close()
	w.Transport.(*kafka.Transport).CloseIdleConnections()

	rawIndex, log := segmentFiles(t, topic)
	entries, err := segment.ReadIndex(rawIndex, 0)
	require.NoError(t, err)
	batches, err := segment.Batches(log)
	require.NoError(t, err)
	require.NotEmpty(t, batches)
	require.Equal(t, int64(n-1), batches[len(batches)-1].LastOffset, "every message is in the segment")
	require.Greater(t, len(entries), 10)

	byPos := map[int64]segment.Batch{}
	for _, b := range batches {
		byPos[b.Position] = b
	}
	minGap := int64(1 << 62)
	for i, e := range entries {
		b, ok := byPos[e.Position]
		require.True(t, ok, "entry %d points at a batch start", i)
		assert.Equal(t, b.LastOffset, e.Offset, "entry %d holds its batch's last offset", i)
		if i > 0 {
			minGap = min(minGap, e.Position-entries[i-1].Position)
		}
	}
	assert.Greater(t, minGap, int64(4096), "more than index.interval.bytes between entries")

	most, total := 0, 0
	for target := int64(0); target < n; target++ {
		want, linear, ok, err := segment.Find(log, 0, target)
		require.NoError(t, err)
		require.True(t, ok)
		got, scanned, ok, err := segment.Find(log, segment.Lookup(entries, target), target)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, want, got, "offset %d", target)
		most, total = max(most, scanned), total+linear
	}
	t.Logf("%d messages in %d batches, %d bytes; index: %d of %d bytes used, %d entries, first %+v, entries %d..%d bytes apart; "+
		"lookup scanned at most %d batch headers, a linear scan %.0f on average",
		n, len(batches), len(log), len(entries)*segment.EntrySize, len(rawIndex), len(entries), entries[0], minGap, maxGap(entries), most, float64(total)/n)
	assert.LessOrEqual(t, most, 4096/int(batches[0].Size)+2)
}

func maxGap(es []segment.Entry) int64 {
	var g int64
	for i := 1; i < len(es); i++ {
		g = max(g, es[i].Position-es[i-1].Position)
	}
	return g
}
