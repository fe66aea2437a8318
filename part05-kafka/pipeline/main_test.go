package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part05-kafka/exactlyonce"
	"github.com/sysdesign-masterclass/golang/part05-kafka/orders"
	"github.com/sysdesign-masterclass/golang/part05-kafka/pipeline"
)

func TestMain(m *testing.M) {
	if os.Getenv(childTopic) != "" {
		os.Exit(consumerChild())
	}
	leakcheck.VerifyTestMain(m)
}

// The fault tests run this test binary again as consumer processes, which
// they kill, pause or stop; the environment says what to consume and where
// the child breaks itself, if it does:
//
//	P05_TOPIC, P05_GROUP           what to consume, as whom
//	P05_APP                        the application_name of its PostgreSQL sessions
//	P05_KILL=after-apply:N         SIGKILL itself after its N-th committed transaction,
//	                               before the offset goes to the group
//	P05_KILL=mid-batch:N           SIGKILL itself while queuing the N-th message's write,
//	                               inside the open transaction
//	P05_KILL=stop-mid-batch:N      SIGSTOP itself there instead: a zombie, frozen inside
//	                               its transaction, until the parent sends SIGCONT
//
// It prints "applied" after its first committed transaction, and on SIGTERM
// it leaves the group and prints its counts (see childExit).
const (
	childTopic = "P05_TOPIC"
	childGroup = "P05_GROUP"
	childApp   = "P05_APP"
	childKill  = "P05_KILL"
)

// childExit is the line a child prints when it leaves the group.
const childExit = "left: applied %d skipped %d generations %d\n"

func consumerChild() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "child:", err); return 1 }
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 5*time.Minute)
	defer cancelT()
	cfg, err := pgxpool.ParseConfig(stack.DatabaseURL())
	if err != nil {
		return fail(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = os.Getenv(childApp)
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	point, count, _ := strings.Cut(os.Getenv(childKill), ":")
	n, _ := strconv.Atoi(count) // 0 (never) without P05_KILL
	raise := func(sig syscall.Signal) { _ = syscall.Kill(os.Getpid(), sig) }
	var applies, queued atomic.Int64 // the partitions' goroutines call both
	group, topic := os.Getenv(childGroup), os.Getenv(childTopic)
	c := &pipeline.Consumer{Brokers: stack.KafkaBrokers(), Group: group, Topic: topic, Store: exactlyonce.New(db, group),
		MaxBatch: 100, SessionTimeout: 6 * time.Second, RebalanceTimeout: 2 * time.Second,
		Handler: func(b *pgx.Batch, m kafka.Message) error {
			if q := queued.Add(1); q == int64(n) {
				switch point {
				case "mid-batch":
					raise(syscall.SIGKILL)
				case "stop-mid-batch":
					fmt.Println("stopping")
					raise(syscall.SIGSTOP)
				}
			}
			return orders.Apply(b, m)
		},
		AfterApply: func(int, exactlyonce.Result) {
			a := applies.Add(1)
			if point == "after-apply" && a == int64(n) {
				raise(syscall.SIGKILL)
			}
			if a == 1 {
				fmt.Println("applied") // the parent waits for this
			}
		}}
	fmt.Println("consuming")
	if err := c.Run(ctx); err != nil {
		return fail(err)
	}
	s := c.Stats()
	fmt.Printf(childExit, s.Applied.Load(), s.Skipped.Load(), s.Generations.Load())
	return 0
}
