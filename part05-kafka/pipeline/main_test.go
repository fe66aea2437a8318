package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
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

// The crash test runs this test binary again as a consumer process, which
// the parent kills; the environment says what to consume and where the
// child kills itself, if it does:
//
//	P05_TOPIC, P05_GROUP           what to consume, as whom
//	P05_KILL=after-apply:N         SIGKILL itself after its N-th committed transaction,
//	                               before the offset goes to the group
//	P05_KILL=mid-batch:N           SIGKILL itself while queuing the N-th message's write,
//	                               inside the open transaction
const (
	childTopic = "P05_TOPIC"
	childGroup = "P05_GROUP"
	childKill  = "P05_KILL"
)

func consumerChild() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "child:", err); return 1 }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db, err := pgxpool.New(ctx, stack.DatabaseURL())
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	point, count, _ := strings.Cut(os.Getenv(childKill), ":")
	n, _ := strconv.Atoi(count) // 0 (never) without P05_KILL
	die := func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	var applies, queued int
	group, topic := os.Getenv(childGroup), os.Getenv(childTopic)
	c := &pipeline.Consumer{Brokers: stack.KafkaBrokers(), Group: group, Topic: topic, Store: exactlyonce.New(db, group),
		MaxBatch: 100, SessionTimeout: 6 * time.Second, RebalanceTimeout: 2 * time.Second,
		Handler: func(b *pgx.Batch, m kafka.Message) error {
			if queued++; point == "mid-batch" && queued == n {
				die()
			}
			return orders.Apply(b, m)
		},
		AfterApply: func(int, exactlyonce.Result) {
			if applies++; point == "after-apply" && applies == n {
				die()
			}
			if applies == 1 {
				fmt.Println("applied") // the parent waits for this, then kills at a random moment
			}
		}}
	fmt.Println("consuming")
	if err := c.Run(ctx); err != nil {
		return fail(err)
	}
	return 0
}
