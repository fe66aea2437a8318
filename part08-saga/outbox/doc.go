// Package outbox is the transactional outbox: a business row and the event
// that announces it are written in one PostgreSQL transaction (Insert,
// CreateOrder), and a relay publishes the event to Kafka afterwards, at least
// once. Two relays:
//
//   - Poller selects the oldest rows FOR UPDATE SKIP LOCKED, publishes them and
//     deletes (or marks) them in the same transaction, one relay at a time (a
//     transaction-level advisory lock), so an aggregate's events keep their order.
//   - CDC reads the outbox's inserts from the write-ahead log through a logical
//     replication slot (pgoutput, via jackc/pglogrepl), as Debezium does, and
//     acknowledges the slot's position only after Kafka confirmed the write.
//
// Both route like Debezium's outbox EventRouter (Router): topic
// events.<aggregate_type>, key aggregate_id, value the payload, the event id in
// a header. An event the router cannot route (an unknown aggregate type, a
// payload that is not a JSON object, an empty key) goes to a dead-letter topic
// with the reason in a header; it never stalls the relay. Consumers remove the
// duplicates at-least-once delivery allows by the event id (Dedup).
//
// What it fixes in the article: its outbox is "published atomically with the
// DB write" only in the sense that the row is; publishing is later and at least
// once, so consumers must dedupe. Debezium 2.x takes topic.prefix, not
// database.server.name.
package outbox
