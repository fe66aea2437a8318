// Package pipeline is the chapter's Kafka pipeline on segmentio/kafka-go:
// topics created with the partitions they need (the stack's broker does not
// auto-create), a producer keyed by aggregate ID with acknowledgements from
// every in-sync replica, and a consumer group that applies each partition in
// order, partitions in parallel, exactly once into PostgreSQL (package
// exactlyonce), resuming from the offsets stored there, with poison messages
// sent to a dead-letter topic with the reason in headers.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// CreateTopic creates topic with partitions partitions (replication factor
// 1: the stack has one broker) unless it exists with that many, and waits
// until every partition has a leader, so the first write does not meet
// "Leader Not Available". It fails if the topic exists with another count.
func CreateTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	c, done := client(brokers, 10*time.Second)
	defer done()
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if err := res.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	for {
		n, ready, err := leaders(ctx, c, topic)
		switch {
		case err == nil && ready && n == partitions:
			return nil
		case err == nil && ready:
			return fmt.Errorf("topic %s has %d partitions, want %d", topic, n, partitions)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s: partitions without a leader (%v): %w", topic, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// leaders reports how many partitions topic has and whether all have a leader.
func leaders(ctx context.Context, c *kafka.Client, topic string) (int, bool, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, false, err
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return 0, false, t.Error
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return len(t.Partitions), false, p.Error
			}
		}
		return len(t.Partitions), len(t.Partitions) > 0, nil
	}
	return 0, false, kafka.UnknownTopicOrPartition
}

// DeleteTopics deletes topics (a test's, at cleanup).
func DeleteTopics(ctx context.Context, brokers []string, topics ...string) error {
	c, done := client(brokers, 10*time.Second)
	defer done()
	res, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return err
	}
	var errs []error
	for t, err := range res.Errors {
		if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("delete topic %s: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// EndOffsets returns each partition's high watermark: the offset the next
// message written to it will get.
func EndOffsets(ctx context.Context, brokers []string, topic string, partitions int) (map[int]int64, error) {
	c, done := client(brokers, 10*time.Second)
	defer done()
	req := make([]kafka.OffsetRequest, partitions)
	for p := range partitions {
		req[p] = kafka.LastOffsetOf(p)
	}
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", p.Partition, p.Error)
		}
		out[p.Partition] = p.LastOffset
	}
	return out, nil
}

// Reachable reports whether a Kafka broker answers a metadata request at
// one of brokers within timeout (a TCP listener alone is not enough: a
// paused broker accepts connections and answers nothing).
func Reachable(brokers []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, done := client(brokers, timeout)
	defer done()
	_, err := c.Metadata(ctx, &kafka.MetadataRequest{})
	return err
}

// client returns a kafka.Client with its own transport, and the function
// that closes the transport's connections (kafka.DefaultTransport would keep
// them, and their goroutines, for the life of the process).
func client(brokers []string, timeout time.Duration) (*kafka.Client, func()) {
	t := &kafka.Transport{Dial: (&net.Dialer{Timeout: timeout}).DialContext, MetadataTTL: time.Second}
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: timeout, Transport: t}, t.CloseIdleConnections
}

// TopicConfig returns the value of one configuration entry of topic as the
// broker reports it (the topic's own setting, or the broker default it
// inherits).
func TopicConfig(ctx context.Context, brokers []string, topic, name string) (string, error) {
	return describeConfig(ctx, brokers, kafka.ResourceTypeTopic, topic, name)
}

// BrokerConfig returns one configuration entry of the first broker that
// answers (log.dirs: where its segments are on its disk).
func BrokerConfig(ctx context.Context, brokers []string, name string) (string, error) {
	c, done := client(brokers, 10*time.Second)
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{})
	done()
	if err != nil {
		return "", err
	}
	if len(md.Brokers) == 0 {
		return "", errors.New("metadata lists no broker")
	}
	return describeConfig(ctx, brokers, kafka.ResourceTypeBroker, strconv.Itoa(md.Brokers[0].ID), name)
}

func describeConfig(ctx context.Context, brokers []string, typ kafka.ResourceType, resource, name string) (string, error) {
	c, done := client(brokers, 10*time.Second)
	defer done()
	res, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: typ, ResourceName: resource, ConfigNames: []string{name}}}})
	if err != nil {
		return "", err
	}
	for _, r := range res.Resources {
		if r.Error != nil {
			return "", r.Error
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == name {
				return e.ConfigValue, nil
			}
		}
	}
	return "", fmt.Errorf("%s has no config %s", resource, name)
}
