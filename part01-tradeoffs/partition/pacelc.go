package partition

import (
	"fmt"
	"time"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/availability"
)

// Else is what a system favours when there is no partition: PACELC's "else,
// latency or consistency".
type Else int

// The two "else" choices.
const (
	Latency     Else = iota + 1 // EL: answer from the nearest replica, maybe stale
	Consistency                 // EC: coordinate replicas on every request, pay the round trips
)

// String prints the label's second half, "EL" or "EC".
func (e Else) String() string {
	switch e {
	case Latency:
		return "EL"
	case Consistency:
		return "EC"
	}
	return fmt.Sprintf("Else(%d)", int(e))
}

// Classification places one database in Abadi's PACELC scheme: "if Partition,
// Availability or Consistency; Else, Latency or Consistency".
type Classification struct {
	System      string
	IfPartition Mode // AP reads as "PA", CP as "PC"
	Else        Else
	Mechanism   string // what produces that behaviour
	Caveat      string // where the label depends on configuration or the source
	// Write and Read are the mechanism's default as consistency levels on 3
	// replicas of a Tunable cluster: how many replicas a write and a read wait
	// for. Measure runs them; the label it derives is not read from IfPartition
	// or Else. For leader-based systems (Spanner, MongoDB, OceanBase) a
	// majority commit and a read that sees every committed write are modelled
	// as QUORUM and QUORUM.
	Write, Read Level
}

// Label is the PACELC label, e.g. "PA/EL".
func (c Classification) Label() string {
	p := "P?"
	switch c.IfPartition {
	case AP:
		p = "PA"
	case CP:
		p = "PC"
	}
	return p + "/" + c.Else.String()
}

// Article returns the article's PACELC table, with the mechanism behind each
// label and, where the label is contested, the caveat. A PA row behaves like
// this package's AP mode during a partition, a PC row like CP mode.
func Article() []Classification {
	return []Classification{
		{
			System: "Cassandra / ScyllaDB", IfPartition: AP, Else: Latency,
			Mechanism: "leaderless, tunable CL (LOCAL_ONE/ONE by default), hinted handoff, LWW by cell timestamp",
			Caveat:    "QUORUM reads+writes buy consistency with latency",
			Write:     One, Read: One,
		},
		{
			System: "DynamoDB", IfPartition: AP, Else: Latency,
			Mechanism: "eventually consistent reads by default",
			Caveat:    "strongly consistent reads on request",
			Write:     Quorum, Read: One, // a write commits on 2 of 3 replicas; any replica serves an eventually consistent read
		},
		{
			System: "Spanner", IfPartition: CP, Else: Consistency,
			Mechanism: "Paxos groups + TrueTime commit wait (article: ~7 ms)",
			Caveat:    "OSDI'12: ε is 1–7 ms (≈4 ms typical); commit wait measured ≈5 ms",
			Write:     Quorum, Read: Quorum,
		},
		{
			System: "MongoDB", IfPartition: CP, Else: Consistency,
			Mechanism: "replica set, majority write/read concern",
			Caveat:    "Abadi (2012) lists it PA/EC; depends on read/write concern",
			Write:     Quorum, Read: Quorum,
		},
		{
			System: "OceanBase", IfPartition: CP, Else: Consistency,
			Mechanism: "Paxos-replicated partitions, majority commit",
			Write:     Quorum, Read: Quorum,
		},
	}
}

// Behaviour is what a pair of levels does on 3 replicas, measured by Measure:
// whether a read on the minority side of a partition {n1} | {n2,n3} is
// answered, whether a read on the healthy cluster can be stale, and what the
// levels cost in latency when nothing is partitioned.
type Behaviour struct {
	Write, Read Level
	// Partitioned is the run with n1 cut off; Healthy the run without.
	Partitioned, Healthy Tally
}

// Label derives the PACELC label from the measurement: PA when no read was
// refused during the partition (the minority side answers), PC when some
// were; EL when a healthy read returned a stale value (the levels wait for
// fewer replicas than R + W > N needs), EC when none did.
func (b Behaviour) Label() string {
	p, e := "PA", "EL"
	if b.Partitioned.RefusedReads > 0 {
		p = "PC"
	}
	if b.Healthy.StaleReads == 0 {
		e = "EC"
	}
	return p + "/" + e
}

// ReadLatency and WriteLatency are the q-quantiles of the healthy run's
// answered reads and writes (nearest rank).
func (b Behaviour) ReadLatency(q float64) time.Duration {
	return availability.NewLatencies(b.Healthy.ReadTook).Quantile(q)
}

// WriteLatency is ReadLatency for writes.
func (b Behaviour) WriteLatency(q float64) time.Duration {
	return availability.NewLatencies(b.Healthy.WriteTook).Quantile(q)
}

// Measure runs wl with writes at w and reads at r on 3 replicas twice: with
// n1 cut off, then healthy with wl.Delay. Both runs use wl.Seed.
func Measure(w, r Level, wl Workload) (Behaviour, error) {
	b := Behaviour{Write: w, Read: r}
	for _, part := range [][]int{{1}, nil} {
		c, err := NewTunable(3, wl.Seed)
		if err != nil {
			return b, err
		}
		run := wl
		run.Partition = part
		t, err := run.Run(c, w, r)
		if err != nil {
			return b, err
		}
		if part != nil {
			b.Partitioned = t
		} else {
			b.Healthy = t
		}
	}
	return b, nil
}
