package partition

import "fmt"

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
		},
		{
			System: "DynamoDB", IfPartition: AP, Else: Latency,
			Mechanism: "eventually consistent reads by default",
			Caveat:    "strongly consistent reads on request",
		},
		{
			System: "Spanner", IfPartition: CP, Else: Consistency,
			Mechanism: "Paxos groups + TrueTime commit wait (article: ~7 ms)",
			Caveat:    "OSDI'12: ε is 1–7 ms (≈4 ms typical); commit wait measured ≈5 ms",
		},
		{
			System: "MongoDB", IfPartition: CP, Else: Consistency,
			Mechanism: "replica set, majority write/read concern",
			Caveat:    "Abadi (2012) lists it PA/EC; depends on read/write concern",
		},
		{
			System: "OceanBase", IfPartition: CP, Else: Consistency,
			Mechanism: "Paxos-replicated partitions, majority commit",
		},
	}
}
