package outbox

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// debezium2 checks the keys Debezium 2.x's PostgresConnector requires or
// dropped: 2.0 removed database.server.name and made topic.prefix the
// required logical name (the topic prefix and the metrics' name).
func debezium2(cfg map[string]string) error {
	var errs []error
	if _, ok := cfg["database.server.name"]; ok {
		errs = append(errs, errors.New("database.server.name was removed in Debezium 2.0"))
	}
	if cfg["topic.prefix"] == "" {
		errs = append(errs, errors.New("topic.prefix is required"))
	}
	return errors.Join(errs...)
}

func connector(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "debezium", "outbox-connector.json"))
	require.NoError(t, err)
	var c struct{ Config map[string]string }
	require.NoError(t, json.Unmarshal(raw, &c))
	return c.Config
}

// The article's connector names its server with database.server.name, which
// Debezium 2.x no longer reads, and has no topic.prefix, which it requires.
func TestArticleDebeziumConfigIsNot2x(t *testing.T) {
	article := map[string]string{ // the keys of the article's config that matter here
		"connector.class":      "io.debezium.connector.postgresql.PostgresConnector",
		"database.server.name": "orders-dbserver",
		"plugin.name":          "pgoutput",
		"slot.name":            "debezium_outbox_slot",
	}
	err := debezium2(article)
	assert.ErrorContains(t, err, "database.server.name was removed")
	assert.ErrorContains(t, err, "topic.prefix is required")
	assert.NoError(t, debezium2(connector(t)), "deploy/debezium/outbox-connector.json")
}

// The connector JSON under deploy/ routes as Router does: the same topic
// pattern, key, id header and payload, so its events and the CDC relay's
// are interchangeable for a consumer.
func TestDebeziumConnectorMatchesRouter(t *testing.T) {
	c := connector(t)
	assert.Equal(t, "io.debezium.transforms.outbox.EventRouter", c["transforms.outbox.type"])
	assert.Equal(t, "events.${routedByValue}", c["transforms.outbox.route.topic.replacement"])
	assert.Equal(t, Topic("order"), strings.ReplaceAll(c["transforms.outbox.route.topic.replacement"], "${routedByValue}", "order"))
	assert.Equal(t, "aggregate_type", c["transforms.outbox.route.by.field"])
	assert.Equal(t, "aggregate_id", c["transforms.outbox.table.field.event.key"])
	assert.Equal(t, "id", c["transforms.outbox.table.field.event.id"])
	assert.Equal(t, HeaderID, "id", "EventRouter puts the event id in header id")
	assert.Equal(t, "payload", c["transforms.outbox.table.field.event.payload"])
	assert.Contains(t, c["transforms.outbox.table.fields.additional.placement"], "event_type:header:"+HeaderEventType)
	assert.Equal(t, "pgoutput", c["plugin.name"])
	assert.Equal(t, "part08."+DefaultTable, c["table.include.list"])
}
